package fielderr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type causeError struct{ name string }

func (e *causeError) Error() string { return fmt.Sprintf("argument %q is not defined", e.name) }

func TestListKeepsEveryProblemAndCause(t *testing.T) {
	var errs List
	query := field.NewPath("metrics").Key("rate").Child("provider", "prometheus", "query")
	errs.Invalid(query, "up{a={{args.x}}}", &causeError{"x"})
	errs.Invalid(query, "up{a={{args.y}}}", fmt.Errorf("rendering: %w", &causeError{"y"}))
	errs.Add(field.Required(field.NewPath("metrics").Index(1).Child("name"), "a name is required"))
	require.Nil(t, List(nil).Err())

	err := fmt.Errorf("preparing: %w", errs.Err())
	assert.EqualError(t, err, "preparing: "+
		`metrics[rate].provider.prometheus.query: argument "x" is not defined`+"\n"+
		`metrics[rate].provider.prometheus.query: rendering: argument "y" is not defined`+"\n"+
		"metrics[1].name: a name is required")

	fe, ok := errors.AsType[*field.Error](err)
	require.True(t, ok, "errors.As finds the first field error")
	assert.Equal(t, "metrics[rate].provider.prometheus.query", fe.Field)
	assert.Equal(t, field.ErrorTypeInvalid, fe.Type)

	got := From(err)
	require.Len(t, got, 3)
	assert.Equal(t, errs.Fields(), got.Fields())
	var names []string
	for _, p := range got {
		if c, ok := errors.AsType[*causeError](p); ok {
			names = append(names, c.name)
		}
	}
	assert.Equal(t, []string{"x", "y"}, names, "each problem's cause is reachable, wrapped or not")
	assert.Equal(t, field.ErrorTypeRequired, got[2].Field.Type)
}

func TestFromFindsBareFieldErrors(t *testing.T) {
	fe := field.Invalid(field.NewPath("spec", "x"), 1, "too small")
	got := From(fmt.Errorf("wrapped: %w", errors.Join(errors.New("plain"), fe)))
	require.Len(t, got, 1)
	assert.Same(t, fe, got[0].Field)
	assert.Nil(t, got[0].Cause)
	assert.Empty(t, From(errors.New("no field here")))
	assert.Empty(t, From(nil))
}

func TestErrorFormat(t *testing.T) {
	assert.EqualError(t, &Error{Field: WithDetail(field.Duplicate(field.NewPath("metrics").Key("m").Child("name"), "m"), `duplicate metric name "m"`)},
		`metrics[m].name: duplicate metric name "m"`, "the detail says it all")
	assert.EqualError(t, &Error{Field: field.Duplicate(field.NewPath("x"), "m")}, `x: Duplicate value: "m"`, "without a detail, the field error's own words")
	assert.EqualError(t, &Error{Field: &field.Error{Type: field.ErrorTypeInvalid, Detail: "not YAML"}}, "not YAML", "a problem with no place")
}
