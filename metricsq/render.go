package metricsq

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// argRef matches {{args.name}} with optional spaces inside the braces. Names follow what
// Argo Rollouts templates use in practice (letters, digits, '_', '-', '.').
var argRef = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}`)

// UndefinedArgError reports a placeholder whose argument has no value.
type UndefinedArgError struct {
	// Name is the argument's name as written after "args.".
	Name string
}

// Error says which argument is missing; the caller adds the metric's name.
func (e *UndefinedArgError) Error() string {
	return fmt.Sprintf("argument %q is not defined", e.Name)
}

// Render replaces every {{args.name}} in query with args[name]. Values are inserted
// verbatim and not expanded again, as Argo Rollouts does; an argument that is referenced
// but missing from args is an error naming it (all missing ones are reported at once).
func Render(query string, args map[string]string) (string, error) {
	var errs []error
	var missing []string
	out := argRef.ReplaceAllStringFunc(query, func(ref string) string {
		name := argRef.FindStringSubmatch(ref)[1]
		v, ok := args[name]
		if !ok {
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
				errs = append(errs, &UndefinedArgError{Name: name})
			}
			return ref
		}
		return v
	})
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return out, nil
}

// ArgNames returns the args text refers to as {{args.name}}, in order, each once.
func ArgNames(text string) []string {
	var names []string
	for _, m := range argRef.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

// Validate checks PromQL syntax with the Prometheus parser, so a run never starts on a
// query Prometheus would reject, and returns the type of what the query evaluates to
// (model.ValVector for sum(...), model.ValScalar for scalar(...)). The error carries the
// parser's line:column position. Experimental functions are refused unless the process
// enabled them in the parser.
func Validate(query string) (model.ValueType, error) {
	e, err := parser.ParseExpr(query)
	if err != nil {
		return model.ValNone, fmt.Errorf("invalid PromQL: %w", err)
	}
	switch e.Type() {
	case parser.ValueTypeScalar:
		return model.ValScalar, nil
	case parser.ValueTypeVector:
		return model.ValVector, nil
	case parser.ValueTypeMatrix:
		return model.ValMatrix, nil
	case parser.ValueTypeString:
		return model.ValString, nil
	}
	return model.ValNone, nil
}
