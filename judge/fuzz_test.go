package judge

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

// points decodes fuzz bytes as float64 bits (any value: NaN, Inf, subnormal, huge), or,
// with small set, one byte per point as 0-7, so ties and constants are common.
func points(data []byte, small bool) []float64 {
	if small {
		out := make([]float64, len(data))
		for i, b := range data {
			out[i] = float64(b % 8)
		}
		return out
	}
	out := make([]float64, 0, len(data)/8)
	for len(data) >= 8 {
		out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(data)))
		data = data[8:]
	}
	return out
}

func bytesOf(v ...float64) []byte {
	out := make([]byte, 0, 8*len(v))
	for _, f := range v {
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(f))
	}
	return out
}

// FuzzClassify checks that any input, settings included, gets a valid, deterministic
// result that Score accepts with a number for a score, and leaves the input alone.
func FuzzClassify(f *testing.F) {
	f.Add(bytesOf(1, 2, 3, 4), bytesOf(10, 20, 30, 40), uint8(0), 1.0, 3.0)
	f.Add(bytesOf(1, 1, 1), bytesOf(1, 1), uint8(1), 1.2, 3.0)
	f.Add(bytesOf(1, 1, 1), bytesOf(2, 2), uint8(2|16), 1.2, 3.0)
	f.Add(bytesOf(math.NaN(), 1, 2), bytesOf(math.NaN(), math.NaN()), uint8(4|32), 0.5, 3.0)
	f.Add(bytesOf(math.Inf(1), 1), bytesOf(2, 3), uint8(16), 1.0, 3.0)
	f.Add(bytesOf(-math.MaxFloat64, 0, math.MaxFloat64), bytesOf(math.MaxFloat64, math.MaxFloat64/2), uint8(8), 1.0, 0.0)
	f.Add(bytesOf(5e-324, 1e-300, 0), bytesOf(1e-310, 2e-310), uint8(128), 0.0, 1e308)
	spanX, spanY := []float64{-1e300, 1e300}, []float64{-1e300, 1e300}
	for i := range 18 {
		spanX = append(spanX, float64((i*7)%19)-9)
		spanY = append(spanY, float64((i*5)%19)-8.5)
	}
	f.Add(bytesOf(spanY...), bytesOf(spanX...), uint8(0), 1.0, 3.0)
	f.Add([]byte{0, 0, 0, 0, 0, 1, 1}, []byte{0, 0, 1, 1, 1, 2}, uint8(64), 1.0, 3.0)
	f.Add([]byte{3, 3, 3}, []byte{}, uint8(64|32), 1.0, 3.0)
	f.Fuzz(func(t *testing.T, control, experiment []byte, flags uint8, limit, factor float64) {
		small := flags&64 != 0
		c, e := points(control, small), points(experiment, small)
		s := Settings{
			Direction:    []Direction{"", DirectionIncrease, DirectionDecrease, "bogus"}[flags%4],
			NaN:          []NaNStrategy{NaNRemove, NaNReplace}[flags>>2&1],
			Outliers:     []OutlierStrategy{OutliersKeep, OutliersRemove}[flags>>3&1],
			Critical:     flags&16 != 0,
			MustHaveData: flags&32 != 0,
			EffectSize:   []EffectSizeMeasure{MeanRatio, CLES}[flags>>7],
		}
		if flags&3 == 3 {
			s.Direction = DirectionEither
			s.AllowedIncrease, s.CriticalDecrease, s.OutlierFactor = &limit, &limit, &factor
		}
		c0, e0 := slices.Clone(c), slices.Clone(e)

		r := Classify(c, e, s)

		if !slices.EqualFunc(c, c0, sameBits) || !slices.EqualFunc(e, e0, sameBits) {
			t.Fatal("input changed")
		}
		switch r.Classification {
		case Pass, High, Low:
			if r.Err != nil {
				t.Fatalf("%s with error %v", r.Classification, r.Err)
			}
			if math.IsNaN(r.CILow) || math.IsNaN(r.CIHigh) || math.IsNaN(r.Estimate) {
				t.Fatalf("%s without an interval: %+v", r.Classification, r)
			}
			if r.Control.Count == 0 || r.Experiment.Count == 0 {
				t.Fatalf("%s without data", r.Classification)
			}
		case NoData:
			if r.Control.Count != 0 && r.Experiment.Count != 0 {
				t.Fatal("NoData with data on both sides")
			}
		case Error:
			// Bad settings and infinite points are the input's fault; all points tied can
			// follow from rounding in x - d. Anything else (say, no convergence) is a bug.
			if !errors.Is(r.Err, ErrInvalidSettings) && !errors.Is(r.Err, ErrNonFinite) && !errors.Is(r.Err, ErrAllTied) {
				t.Fatalf("Error: %v", r.Err)
			}
		default:
			t.Fatalf("classification %q", r.Classification)
		}
		if r.Classification == High && (!(r.CILow > 0) || s.Direction == DirectionDecrease) {
			t.Fatalf("High with CI low %v, direction %q", r.CILow, s.Direction)
		}
		if r.Classification == Low && (!(r.CIHigh < 0) || s.Direction == DirectionIncrease) {
			t.Fatalf("Low with CI high %v, direction %q", r.CIHigh, s.Direction)
		}
		if r.CriticalFailure && !s.Critical {
			t.Fatal("critical failure of a metric that is not critical")
		}
		if r.Reason == "" {
			t.Fatal("no reason")
		}
		again := Classify(c, e, s)
		if again.Classification != r.Classification || again.Reason != r.Reason || again.CriticalFailure != r.CriticalFailure {
			t.Fatalf("not deterministic: %q then %q", r.Reason, again.Reason)
		}

		sum, err := Score([]MetricResult{{Name: "m", Result: r}}, nil, Thresholds{})
		if err != nil {
			t.Fatalf("Score of a Classify result: %v", err)
		}
		if math.IsNaN(sum.Score) || sum.Score < 0 || sum.Score > 100 {
			t.Fatalf("score %v", sum.Score)
		}
	})
}

func sameBits(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// FuzzScore checks that any mix of results, weights and thresholds gets an error or a
// score in 0-100 with 2 decimals and a verdict that agrees with the thresholds.
func FuzzScore(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 2, 2}, 0.0, 0.0, 0.0, 0.0)
	f.Add([]byte{0, 0, 0, 0, 1, 0}, 60.0, 0.0, 95.0, 75.0)
	f.Add([]byte{0, 8, 3, 1}, 100.0, 100.0, 100.0, 0.0)
	f.Add([]byte{3, 0, 3, 0, 0, 0}, 0.0, 0.0, 50.0, 50.0)
	f.Add([]byte{1, 16, 0, 0}, math.NaN(), -1.0, 95.0, 75.0)
	f.Add([]byte{5, 0}, 0.0, 0.0, 0.0, 0.0)
	f.Add([]byte{}, 0.0, 0.0, 0.0, 0.0)
	f.Fuzz(func(t *testing.T, data []byte, w0, w1, pass, marginal float64) {
		classes := []Classification{Pass, High, Low, NoData, Error, "bogus"}
		var results []MetricResult
		critical := false
		for i := 0; i+1 < len(data); i += 2 {
			c, g := data[i], data[i+1]
			mr := MetricResult{
				Name:  string(rune('a' + i%26)),
				Group: []string{"", "g0", "g1", "g2"}[g%4],
				Muted: g&4 != 0,
				Result: Result{
					Classification:  classes[int(c)%len(classes)],
					CriticalFailure: g&8 != 0,
					MustHaveData:    g&16 != 0,
				},
			}
			critical = critical || (mr.Result.CriticalFailure && !mr.Muted)
			results = append(results, mr)
		}
		weights := map[string]float64{}
		if len(data) > 0 && data[0]&64 != 0 {
			weights["g0"] = w0
		}
		if len(data) > 0 && data[0]&128 != 0 {
			weights["g1"] = w1
		}
		th := Thresholds{Pass: pass, Marginal: marginal}

		s, err := Score(results, weights, th)
		if err != nil {
			return
		}
		if math.IsNaN(s.Score) || s.Score < 0 || s.Score > 100 {
			t.Fatalf("score %v", s.Score)
		}
		if s.Score != math.Round(s.Score*100)/100 {
			t.Fatalf("score %v has more than 2 decimals", s.Score)
		}
		if critical && (s.Score != 0 || s.Verdict != VerdictFail) {
			t.Fatalf("critical failure scored %v, %s", s.Score, s.Verdict)
		}
		rt, _ := th.resolve()
		switch s.Verdict {
		case VerdictPass:
			if s.Score < rt.Pass {
				t.Fatalf("Pass at %v under %v", s.Score, rt.Pass)
			}
		case VerdictMarginal:
			if s.Score < rt.Marginal || s.Score >= rt.Pass {
				t.Fatalf("Marginal at %v outside [%v, %v)", s.Score, rt.Marginal, rt.Pass)
			}
		case VerdictFail:
			if s.Score >= rt.Marginal && s.Score != 0 {
				t.Fatalf("Fail at %v over marginal %v", s.Score, rt.Marginal)
			}
		default:
			t.Fatalf("verdict %q", s.Verdict)
		}
		if s.Reason == "" {
			t.Fatal("no reason")
		}
	})
}
