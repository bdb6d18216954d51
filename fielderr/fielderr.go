// Package fielderr carries spec problems as Kubernetes field errors (*field.Error, located
// by a field.Path) together with the error that caused each one, so that callers tell
// problems apart with errors.As and struct fields, never by their message text.
package fielderr

import (
	"errors"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Error is one spec problem: the *field.Error that says where and what, and the error
// behind it when there is one. errors.As finds either through it. It adds nothing else:
// the problem is the *field.Error, and Error exists because field.Error cannot wrap.
type Error struct {
	Field *field.Error
	Cause error
}

// Error is "FIELD: DETAIL". The detail already says what is wrong; field.Error's own
// format would add the error type and the bad value, which may be long or secret.
func (e *Error) Error() string {
	if e.Field.Detail == "" {
		return e.Field.Error()
	}
	if e.Field.Field == "" {
		return e.Field.Detail
	}
	return e.Field.Field + ": " + e.Field.Detail
}

// Unwrap returns the field error and, if there is one, the cause.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Field}
	}
	return []error{e.Field, e.Cause}
}

// List is every problem found in a spec, in the order found.
type List []*Error

// Add appends problems that have no cause beyond their detail.
func (l *List) Add(errs ...*field.Error) {
	for _, fe := range errs {
		*l = append(*l, &Error{Field: fe})
	}
}

// Invalid appends the problem that value at path is wrong because of err, whose message
// becomes the detail.
func (l *List) Invalid(path *field.Path, value any, err error) {
	*l = append(*l, &Error{Field: field.Invalid(path, value, err.Error()), Cause: err})
}

// Err is the list as one error, or nil when it is empty: each problem starts a new line
// (a detail may span several, as expr's drawing of where a condition broke does), and
// errors.As finds every problem's *field.Error and cause in it.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Fields returns the problems' field errors.
func (l List) Fields() field.ErrorList {
	out := make(field.ErrorList, len(l))
	for i, e := range l {
		out[i] = e.Field
	}
	return out
}

// From returns every problem in err's tree, depth first: each *Error, and each
// *field.Error that is not inside one. An error that holds no field error gives none.
func From(err error) List {
	var out List
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Error:
			out = append(out, e)
		case *field.Error:
			out = append(out, &Error{Field: e})
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// WithDetail sets fe's detail, for the field constructors that take none (Duplicate,
// NotFound), and returns fe.
func WithDetail(fe *field.Error, detail string) *field.Error {
	fe.Detail = detail
	return fe
}
