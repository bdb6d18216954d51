package alerts

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
)

func sets(matchers ...[]string) []v1alpha1.AlertMatcherSet {
	out := make([]v1alpha1.AlertMatcherSet, 0, len(matchers))
	for _, m := range matchers {
		out = append(out, v1alpha1.AlertMatcherSet{Matchers: m})
	}
	return out
}

func TestParseMatchersErrors(t *testing.T) {
	tests := []struct {
		name    string
		sets    []v1alpha1.AlertMatcherSet
		wantErr string
	}{
		{"no operator", sets([]string{`severity="critical"`}, []string{`foo`}), `spec.abortOn.alerts[1].matchers[0]: Invalid value: "foo": `},
		{"bad regex", sets([]string{`a="b"`, `c=~"("`}), `spec.abortOn.alerts[0].matchers[1]: Invalid value: "c=~\"(\"": `},
		{"unquoted value", sets([]string{`a=b`}), `spec.abortOn.alerts[0].matchers[0]: `},
		{"two matchers in one entry", sets([]string{`a="b",c="d"`}), `spec.abortOn.alerts[0].matchers[0]: Invalid value: "a=\"b\",c=\"d\"": want exactly one matcher`},
		{"empty entry", sets([]string{``}), `spec.abortOn.alerts[0].matchers[0]: Invalid value: "": want exactly one matcher`},
		{"empty set", sets([]string{`a="b"`}, []string{}), `spec.abortOn.alerts[1].matchers: Required value: at least one matcher`},
		{"injection closes the braces", sets([]string{`a="b"} or {c="d"`}), `spec.abortOn.alerts[0].matchers[0]: `},
		{"braces included", sets([]string{`{a="b"}`}), `spec.abortOn.alerts[0].matchers[0]: `},
		{"bare quoted name", sets([]string{`"HighErrorRate"`}), `alerts carry no __name__ label`},
		{"metric name", sets([]string{`__name__="up"`}), `alerts carry no __name__ label`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMatchers(tt.sets, field.NewPath("spec", "abortOn", "alerts"))
			require.Error(t, err)
			assert.Nil(t, got)
			assert.Contains(t, err.Error(), tt.wantErr)
			// The parser's positions count braces the user never wrote.
			assert.NotContains(t, err.Error(), "1:")
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		sets   []v1alpha1.AlertMatcherSet
		labels map[string]string
		want   bool
	}{
		{"equal", sets([]string{`severity="critical"`}), map[string]string{"severity": "critical"}, true},
		{"equal, other value", sets([]string{`severity="critical"`}), map[string]string{"severity": "warning"}, false},
		{"not equal", sets([]string{`env!="dev"`}), map[string]string{"env": "prod"}, true},
		{"not equal, same value", sets([]string{`env!="dev"`}), map[string]string{"env": "dev"}, false},
		{"regex", sets([]string{`service=~"api|web"`}), map[string]string{"service": "web"}, true},
		{"regex is anchored at the end", sets([]string{`service=~"api"`}), map[string]string{"service": "api-gateway"}, false},
		{"regex is anchored at the start", sets([]string{`service=~"gateway"`}), map[string]string{"service": "api-gateway"}, false},
		{"regex full match", sets([]string{`service=~"api.*"`}), map[string]string{"service": "api-gateway"}, true},
		{"regex dot matches newline", sets([]string{`msg=~"a.b"`}), map[string]string{"msg": "a\nb"}, true},
		{"not regex", sets([]string{`service!~"api.*"`}), map[string]string{"service": "web"}, true},
		{"not regex, matching value", sets([]string{`service!~"api.*"`}), map[string]string{"service": "api-gateway"}, false},
		{"missing label equals empty", sets([]string{`team=""`}), map[string]string{"alertname": "X"}, true},
		{"missing label is not a value", sets([]string{`team="payments"`}), map[string]string{"alertname": "X"}, false},
		{"missing label passes not equal", sets([]string{`team!="payments"`}), nil, true},
		{"missing label matches .*", sets([]string{`team=~".*"`}), nil, true},
		{"missing label fails .+", sets([]string{`team=~".+"`}), nil, false},
		{"every matcher of a set", sets([]string{`alertname="HighErrorRate"`, `service="checkout"`}), map[string]string{"alertname": "HighErrorRate", "service": "cart"}, false},
		{"any set", sets([]string{`alertname="A"`}, []string{`alertname="B"`, `severity="critical"`}), map[string]string{"alertname": "B", "severity": "critical"}, true},
		{"no set matches", sets([]string{`alertname="A"`}, []string{`alertname="B"`, `severity="critical"`}), map[string]string{"alertname": "B", "severity": "page"}, false},
		{"no sets match nothing", nil, map[string]string{"alertname": "A"}, false},
		{"single quotes and backticks", sets([]string{`a='x'`, "b=`y`"}), map[string]string{"a": "x", "b": "y"}, true},
		{"spaces around the operator", sets([]string{` a = "x" `}), map[string]string{"a": "x"}, true},
		{"UTF-8 label name", sets([]string{`"k8s.namespace"="shop"`}), map[string]string{"k8s.namespace": "shop"}, true},
		{"escapes in the value", sets([]string{`summary="a\"b\n"`}), map[string]string{"summary": "a\"b\n"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMatchers(tt.sets, field.NewPath("spec", "abortOn", "alerts"))
			require.NoError(t, err)
			assert.Equal(t, tt.want, m.Match(tt.labels))
		})
	}
}

// FuzzParseMatchers parses any matcher text: a bad one is a field error naming the
// matcher, a good one matches a label set without panicking.
func FuzzParseMatchers(f *testing.F) {
	for _, s := range []string{`alertname="HighErrorRate"`, `severity=~"crit.*"`, `a!="b"`, `a!~"("`, `{a="b"}`, `a="b"} or {c="d"`, `"x"`, `__name__="up"`, ``, `a="b",c="d"`} {
		f.Add(s, "HighErrorRate")
	}
	f.Fuzz(func(t *testing.T, text, value string) {
		sets, err := ParseMatchers([]v1alpha1.AlertMatcherSet{{Matchers: []string{text}}}, field.NewPath("spec", "abortOn", "alerts"))
		if err != nil {
			fe, ok := errors.AsType[*field.Error](err)
			require.True(t, ok, "%v is not a field error", err)
			assert.Equal(t, "spec.abortOn.alerts[0].matchers[0]", fe.Field)
			return
		}
		require.Len(t, sets, 1)
		sets.Match(map[string]string{"alertname": value})
	})
}
