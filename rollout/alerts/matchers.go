package alerts

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
)

// MatcherSets are parsed spec.abortOn.alerts: an alert matches when it matches every
// matcher of at least one set.
type MatcherSets [][]*labels.Matcher

// ParseMatchers parses matcher sets in Prometheus syntax; setsPath is where they are (e.g.
// spec.abortOn.alerts), and a problem is a *field.Error naming the matcher.
func ParseMatchers(sets []v1alpha1.AlertMatcherSet, setsPath *field.Path) (MatcherSets, error) {
	out := make(MatcherSets, 0, len(sets))
	for i, set := range sets {
		path := setsPath.Index(i).Child("matchers")
		// An empty set would match every alert, so any alert at all would abort the
		// release; the CRD forbids it, but the API server is not the only writer in tests
		// and older objects may predate the rule.
		if len(set.Matchers) == 0 {
			return nil, field.Required(path, "at least one matcher")
		}
		parsed := make([]*labels.Matcher, 0, len(set.Matchers))
		for j, text := range set.Matchers {
			m, err := parseMatcher(text)
			if err != nil {
				return nil, field.Invalid(path.Index(j), text, err.Error())
			}
			parsed = append(parsed, m)
		}
		out = append(out, parsed)
	}
	return out, nil
}

// parseMatcher parses one matcher with the PromQL parser, so the syntax, quoting and
// regex anchoring are exactly Prometheus's.
func parseMatcher(text string) (*labels.Matcher, error) {
	ms, err := parser.ParseMetricSelector("{" + text + "}")
	if err != nil {
		// The parser's positions count the braces added above; its message alone is
		// clearer to someone looking at the field.
		var perrs parser.ParseErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			return nil, perrs[0].Err
		}
		return nil, err
	}
	// Several comma-separated matchers in one entry would silently change what "every
	// matcher of a set" means, so each entry must hold exactly one.
	if len(ms) != 1 {
		return nil, fmt.Errorf("want exactly one matcher such as severity=\"critical\", got %d", len(ms))
	}
	// Prometheus drops __name__ from alert labels, so such a matcher (or a bare quoted
	// name, which PromQL reads as one) could never do what was meant.
	if ms[0].Name == model.MetricNameLabel {
		return nil, errors.New("alerts carry no __name__ label; match alertname instead")
	}
	return ms[0], nil
}

// Match reports whether the labels match every matcher of at least one set; a missing
// label matches as the empty string, as in Prometheus and Alertmanager.
func (m MatcherSets) Match(lbls map[string]string) bool {
	for _, set := range m {
		if matchAll(set, lbls) {
			return true
		}
	}
	return false
}

func matchAll(set []*labels.Matcher, lbls map[string]string) bool {
	for _, m := range set {
		if !m.Matches(lbls[m.Name]) {
			return false
		}
	}
	return true
}
