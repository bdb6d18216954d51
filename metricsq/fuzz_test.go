package metricsq

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// FuzzShape decodes Prometheus API result JSON of any type and checks that shaping never
// panics and keeps its invariants.
func FuzzShape(f *testing.F) {
	seeds := []struct {
		kind uint8
		data string
	}{
		{0, `[1700000000, "0.95"]`},
		{0, `[1700000000, "NaN"]`},
		{1, `[]`},
		{1, `[null]`},
		{1, `[{"metric": {"job": "a"}, "value": [1700000000, "+Inf"]}]`},
		{1, `[{"metric": {}, "value": [1700000000, "1"]}, {"metric": {"a": "b"}, "value": [1700000000, "-Inf"]}]`},
		{1, `[{"metric": {}, "histogram": [1700000000, {"count": "3", "sum": "2", "buckets": [[0, "0", "1", "3"]]}]}]`},
		{2, `[]`},
		{2, `[null, {"metric": {"job": "a"}, "values": []}]`},
		{2, `[{"metric": {"job": "a"}, "values": [[1, "1"], [2, "NaN"]]}]`},
		{3, `[1700000000, "12.5"]`},
		{3, `[1700000000, "not a number"]`},
	}
	for _, s := range seeds {
		f.Add(s.kind, s.data)
	}
	f.Fuzz(func(t *testing.T, kind uint8, data string) {
		var v model.Value
		switch kind % 4 {
		case 0:
			v = new(model.Scalar)
		case 1:
			v = &model.Vector{}
		case 2:
			v = &model.Matrix{}
		case 3:
			v = new(model.String)
		}
		if json.Unmarshal([]byte(data), v) != nil {
			return
		}
		// Vector and Matrix are slice types: hand Shape the value, as the client does.
		switch p := v.(type) {
		case *model.Vector:
			v = *p
		case *model.Matrix:
			v = *p
		}
		r, err := Shape(v)
		if err != nil {
			return
		}
		require.Len(t, r.Series, len(r.Values))
		usable := false
		for i, s := range r.Series {
			require.NotNil(t, s.Labels)
			require.True(t, s.Value == r.Values[i] || math.IsNaN(s.Value) && math.IsNaN(r.Values[i]))
			usable = usable || !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0)
		}
		require.Equal(t, !usable, r.NoData)
		_ = r.String()
	})
}

// FuzzRender checks that rendering never panics, that a query without placeholders comes
// back unchanged, and that it fails exactly when a referenced argument is missing: the
// missing arguments it names are all a query needs to render.
func FuzzRender(f *testing.F) {
	f.Add(`up{job="{{args.job}}"}`, "checkout")
	f.Add(`{{ args.a }}{{args.b-c}}{{args.}}{{args`, "{{")
	f.Add(`{{{{args.a}}args.b}}`, "")
	f.Add(`rate(x[{{args.window}}])`, "5m")
	f.Add(``, ``)
	f.Fuzz(func(t *testing.T, query, value string) {
		out, errMissing := Render(query, nil)
		if errMissing == nil {
			require.Equal(t, query, out)
			return
		}
		args := map[string]string{}
		for _, err := range errMissing.(interface{ Unwrap() []error }).Unwrap() {
			var undefined *UndefinedArgError
			require.ErrorAs(t, err, &undefined)
			require.NotContains(t, args, undefined.Name, "each missing argument is named once")
			args[undefined.Name] = value
		}
		_, err := Render(query, args)
		require.NoError(t, err)
	})
}
