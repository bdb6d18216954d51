package metricsq

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample(job string, v float64) *model.Sample {
	return &model.Sample{Metric: model.Metric{"job": model.LabelValue(job)}, Value: model.SampleValue(v)}
}

func stream(job string, vs ...float64) *model.SampleStream {
	ss := &model.SampleStream{Metric: model.Metric{"job": model.LabelValue(job)}}
	for i, v := range vs {
		ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.Time(i * 1000), Value: model.SampleValue(v)})
	}
	return ss
}

func TestShape(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name       string
		in         model.Value
		wantType   model.ValueType
		wantValues []float64
		wantNoData bool
		wantString string
	}{
		{name: "nil", in: nil, wantType: model.ValNone, wantNoData: true, wantString: ""},
		{name: "nil scalar", in: (*model.Scalar)(nil), wantType: model.ValNone, wantNoData: true},
		{name: "scalar", in: &model.Scalar{Value: 0.95}, wantType: model.ValScalar, wantValues: []float64{0.95}, wantString: "0.95"},
		{name: "scalar NaN", in: &model.Scalar{Value: model.SampleValue(nan)}, wantType: model.ValScalar, wantValues: []float64{nan}, wantNoData: true, wantString: "NaN"},
		{name: "numeric string", in: &model.String{Value: " 12 "}, wantType: model.ValString, wantValues: []float64{12}, wantString: "12"},
		{name: "empty vector", in: model.Vector{}, wantType: model.ValVector, wantValues: []float64{}, wantNoData: true, wantString: "[]"},
		{name: "vector", in: model.Vector{sample("a", 0.93), sample("b", 0.95)}, wantType: model.ValVector, wantValues: []float64{0.93, 0.95}, wantString: "[0.93, 0.95]"},
		{name: "vector all NaN or Inf", in: model.Vector{sample("a", nan), sample("b", inf), sample("c", -inf)}, wantType: model.ValVector, wantValues: []float64{nan, inf, -inf}, wantNoData: true, wantString: "[NaN, +Inf, -Inf]"},
		{name: "vector one usable", in: model.Vector{sample("a", nan), sample("b", 1)}, wantType: model.ValVector, wantValues: []float64{nan, 1}, wantString: "[NaN, 1]"},
		{name: "vector nil sample skipped", in: model.Vector{nil, sample("a", 2)}, wantType: model.ValVector, wantValues: []float64{2}, wantString: "[2]"},
		{name: "histogram sample is NaN", in: model.Vector{{Histogram: &model.SampleHistogram{Count: 3}}}, wantType: model.ValVector, wantValues: []float64{nan}, wantNoData: true, wantString: "[NaN]"},
		{name: "empty matrix", in: model.Matrix{}, wantType: model.ValMatrix, wantValues: []float64{}, wantNoData: true, wantString: "[]"},
		{name: "matrix last values", in: model.Matrix{stream("a", 1, 2, 3), stream("b", 5, 4)}, wantType: model.ValMatrix, wantValues: []float64{3, 4}, wantString: "[3, 4]"},
		{name: "matrix series without points", in: model.Matrix{stream("a")}, wantType: model.ValMatrix, wantValues: []float64{nan}, wantNoData: true, wantString: "[NaN]"},
		{name: "large and tiny numbers", in: model.Vector{sample("a", 1e300), sample("b", 1234567), sample("c", 1e-9)}, wantType: model.ValVector, wantValues: []float64{1e300, 1234567, 1e-9}, wantString: "[1e+300, 1234567, 1e-09]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Shape(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.wantType, r.Type)
			assertFloats(t, tt.wantValues, r.Values)
			assert.Equal(t, tt.wantNoData, r.NoData)
			assert.Equal(t, tt.wantString, r.String())
			require.Len(t, r.Series, len(r.Values))
			for i, s := range r.Series {
				assert.NotNil(t, s.Labels)
				assertFloats(t, []float64{r.Values[i]}, []float64{s.Value})
			}
		})
	}
}

func TestShapeSeries(t *testing.T) {
	r, err := Shape(model.Matrix{stream("a", 1, 2)})
	require.NoError(t, err)
	require.Len(t, r.Series, 1)
	assert.Equal(t, Sample{Labels: map[string]string{"job": "a"}, Value: 2, Values: []float64{1, 2}}, r.Series[0])

	r, err = Shape(model.Vector{sample("b", 7)})
	require.NoError(t, err)
	assert.Equal(t, []Sample{{Labels: map[string]string{"job": "b"}, Value: 7}}, r.Series)
}

func TestShapeErrors(t *testing.T) {
	_, err := Shape(&model.String{Value: "ok"})
	assert.EqualError(t, err, `string result "ok" is not a number`)
}

func TestResultStringTruncates(t *testing.T) {
	var v model.Vector
	for i := range 25 {
		v = append(v, sample("a", float64(i)))
	}
	r, err := Shape(v)
	require.NoError(t, err)
	assert.Equal(t, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... (15 more)]", r.String())
}

// assertFloats compares element-wise so NaN equals NaN.
func assertFloats(t *testing.T, want, got []float64) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		if math.IsNaN(want[i]) {
			assert.True(t, math.IsNaN(got[i]), "index %d: want NaN, got %v", i, got[i])
			continue
		}
		assert.Equal(t, want[i], got[i], "index %d", i)
	}
}

func TestShapeDocument(t *testing.T) {
	tests := []struct {
		name       string
		numbers    model.Value
		doc        any
		wantType   model.ValueType
		wantValues []float64
		wantNoData bool
		wantString string
	}{
		{name: "a number is a scalar", numbers: &model.Scalar{Value: 0.97}, doc: 0.97, wantType: model.ValScalar, wantValues: []float64{0.97}, wantString: "0.97"},
		{name: "numbers are a vector", numbers: model.Vector{sample("", 1), sample("", 2)}, doc: []any{1.0, 2.0}, wantType: model.ValVector, wantValues: []float64{1, 2}, wantString: "[1, 2]"},
		{name: "an empty list is no data", numbers: model.Vector{}, doc: []any{}, wantType: model.ValVector, wantValues: []float64{}, wantNoData: true, wantString: "[]"},
		{name: "null is no data", doc: nil, wantType: model.ValNone, wantNoData: true, wantString: "null"},
		{name: "a bool", doc: true, wantType: model.ValNone, wantString: "true"},
		{name: "false is data", doc: false, wantType: model.ValNone, wantString: "false"},
		{name: "a string", doc: "It worked!", wantType: model.ValNone, wantString: `"It worked!"`},
		{name: "an object", doc: map[string]any{"ok": true, "successPercent": 0.95}, wantType: model.ValNone, wantString: `{"ok":true,"successPercent":0.95}`},
		{name: "a long object is shortened", doc: map[string]any{"log": strings.Repeat("x", 300)}, wantType: model.ValNone, wantString: `{"log":"` + strings.Repeat("x", 192) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ShapeDocument(tt.numbers, Document{Value: tt.doc})
			require.NoError(t, err)
			assert.Equal(t, tt.wantType, r.Type)
			assertFloats(t, tt.wantValues, r.Values)
			assert.Equal(t, tt.wantNoData, r.NoData)
			assert.Equal(t, tt.wantString, r.String())
			require.NotNil(t, r.Document)
			assert.Equal(t, tt.doc, r.Document.Value)
		})
	}
	_, err := ShapeDocument(&model.String{Value: "x"}, Document{Value: "x"})
	assert.Error(t, err, "the numbers must be numbers")
}
