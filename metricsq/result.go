package metricsq

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
)

// Sample is one series of a result with its labels. Conditions see it as an element of
// `series`, with the fields named by the expr tags.
type Sample struct {
	// Labels are the series' labels; never nil, empty for a scalar.
	Labels map[string]string `expr:"labels"`
	// Value is the sample's value; for a matrix, the series' last value.
	Value float64 `expr:"value"`
	// Values holds every point of a matrix series in time order; nil otherwise.
	Values []float64 `expr:"values"`
}

// Document is a JSON answer as encoding/json decodes it: nil, bool, float64, string,
// []any or map[string]any. Conditions read it as Argo Rollouts hands a web value over.
type Document struct {
	Value any
}

// Result is a query result shaped for conditions. Results may be shared by every run that
// asked the same question at the same tick, so they are read-only.
type Result struct {
	// Type is the Prometheus result type of the numbers; model.ValNone when there are
	// none: no value at all, or a Document that is not numbers.
	Type model.ValueType
	// Values is Argo Rollouts' shaping: a scalar gives one value, a vector one per
	// sample, a matrix the last value of each series.
	Values []float64
	// Series carries the same values with their labels, one per entry of Values.
	Series []Sample
	// NoData is set when nothing usable came back: no series, or only NaN and ±Inf, or a
	// JSON null. It must never count as a success; the metric's noData policy decides.
	NoData bool
	// Document is the JSON value a web provider picked, nil for other providers. When it
	// is a number or a list of numbers, Type, Values and Series hold them too, so
	// conditions written for numbers read it as they always have.
	Document *Document
}

// Shape converts a Prometheus query result into a Result. It never panics: nil values,
// nil samples and empty series become no data. Only a string that is not a number is an
// error, since conditions work on numbers.
func Shape(v model.Value) (Result, error) {
	switch v := v.(type) {
	case *model.Scalar:
		if v == nil {
			return noValue(), nil
		}
		return single(model.ValScalar, float64(v.Value)), nil
	case *model.String:
		if v == nil {
			return noValue(), nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v.Value), 64)
		if err != nil {
			return Result{}, fmt.Errorf("string result %q is not a number", v.Value)
		}
		return single(model.ValString, f), nil
	case model.Vector:
		r := Result{Type: model.ValVector, Values: make([]float64, 0, len(v)), Series: make([]Sample, 0, len(v))}
		for _, s := range v {
			if s == nil {
				continue
			}
			val := float64(s.Value)
			if s.Histogram != nil {
				// A native histogram sample has no float value a condition could compare.
				val = math.NaN()
			}
			r.add(Sample{Labels: labelMap(s.Metric), Value: val})
		}
		r.NoData = allUnusable(r.Values)
		return r, nil
	case model.Matrix:
		r := Result{Type: model.ValMatrix, Values: make([]float64, 0, len(v)), Series: make([]Sample, 0, len(v))}
		for _, ss := range v {
			if ss == nil {
				continue
			}
			points := make([]float64, len(ss.Values))
			for i, p := range ss.Values {
				points[i] = float64(p.Value)
			}
			// A series made only of histogram points still counts, as NaN, so Values and
			// Series stay aligned with what Prometheus returned.
			last := math.NaN()
			if len(points) > 0 {
				last = points[len(points)-1]
			}
			r.add(Sample{Labels: labelMap(ss.Metric), Value: last, Values: points})
		}
		r.NoData = allUnusable(r.Values)
		return r, nil
	case nil:
		return noValue(), nil
	default:
		return Result{}, fmt.Errorf("unsupported result type %T", v)
	}
}

// ShapeDocument shapes a JSON answer: numbers is its reading as numbers (a scalar for one
// number, a vector for a list of them), nil when it is not numbers.
func ShapeDocument(numbers model.Value, doc Document) (Result, error) {
	r, err := Shape(numbers)
	if err != nil {
		return Result{}, err
	}
	r.Document = &doc
	if numbers == nil {
		r.NoData = doc.Value == nil
	}
	return r, nil
}

func noValue() Result {
	return Result{Type: model.ValNone, NoData: true}
}

func single(t model.ValueType, f float64) Result {
	return Result{
		Type:   t,
		Values: []float64{f},
		Series: []Sample{{Labels: map[string]string{}, Value: f}},
		NoData: allUnusable([]float64{f}),
	}
}

func (r *Result) add(s Sample) {
	r.Values = append(r.Values, s.Value)
	r.Series = append(r.Series, s)
}

func labelMap(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[string(k)] = string(v)
	}
	return out
}

// allUnusable is true for no values too: an empty result is the commonest "no data".
func allUnusable(vs []float64) bool {
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// maxShown bounds String so a query returning thousands of series cannot bloat status;
// maxShownDocument does the same for a document's JSON.
const (
	maxShown         = 10
	maxShownDocument = 200
)

// String renders the result for status and messages: "0.95" for a scalar, "[0.93, 0.95]"
// for a vector or matrix, "[]" when empty, a document that is not numbers as its JSON
// (shortened), "" when there was no value at all.
func (r Result) String() string {
	switch {
	case r.Type == model.ValNone && r.Document != nil:
		b, _ := json.Marshal(r.Document.Value) // what encoding/json decoded encodes back
		if len(b) > maxShownDocument {
			return string(b[:maxShownDocument]) + "..."
		}
		return string(b)
	case r.Type == model.ValNone:
		return ""
	case r.Type == model.ValScalar || r.Type == model.ValString:
		if len(r.Values) == 1 {
			return formatFloat(r.Values[0])
		}
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range r.Values {
		if i == maxShown {
			fmt.Fprintf(&b, ", ... (%d more)", len(r.Values)-maxShown)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(formatFloat(v))
	}
	b.WriteByte(']')
	return b.String()
}

// formatFloat writes plain decimals for everyday magnitudes and exponents only for
// extreme ones, so "0.95" stays "0.95" and 1e300 does not print 300 digits.
func formatFloat(v float64) string {
	if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
