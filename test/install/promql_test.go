package install

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	// The controller's metrics all live in controller-runtime's registry: its own (reconciles,
	// work queues, leader election, client requests, Go and process) registered by these
	// packages' init, as in the controller binary, and promgate's, registered below by the
	// constructors the controller calls.
	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/providers/shared"
	"github.com/promgate/promgate/rollout"
	_ "sigs.k8s.io/controller-runtime/pkg/controller"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var registerOnce sync.Once

// servedMetrics registers promgate's collectors on controller-runtime's registry, as
// `promgate controller` does, and returns whether a metric family of a name is served.
//
// A registry lists no family of a vector that has no series yet, so Gather cannot tell;
// instead the answer comes from the registry itself: a descriptor with the name and a help
// text of its own is registered, which fails exactly when a family of that name is
// registered already, and is then unregistered again.
func servedMetrics(t *testing.T) func(name string) bool {
	t.Helper()
	registerOnce.Do(func() {
		_, err := analysis.NewMetrics(ctrlmetrics.Registry)
		require.NoError(t, err)
		_, err = shared.NewExecutor(ctrlmetrics.Registry, shared.Options{})
		require.NoError(t, err)
		_, err = rollout.NewMetrics(ctrlmetrics.Registry)
		require.NoError(t, err)
		// Registered only: the probe below never gathers, so no cache is read.
		require.NoError(t, rollout.RegisterRolloutCount(ctrlmetrics.Registry, nil, ""))
	})
	family := func(name string) bool {
		p := probe{prometheus.NewDesc(name, "install test probe of "+name, nil, nil)}
		err := ctrlmetrics.Registry.Register(p)
		if err == nil {
			ctrlmetrics.Registry.Unregister(p)
			return false
		}
		require.Contains(t, err.Error(), "fully-qualified name", "probing %s", name)
		return true
	}
	return func(name string) bool {
		if family(name) {
			return true
		}
		// A histogram's or summary's series are named after their family.
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && family(base) {
				return true
			}
		}
		return false
	}
}

type probe struct{ desc *prometheus.Desc }

func (p probe) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }
func (p probe) Collect(chan<- prometheus.Metric)    {}

// grafanaVars are the dashboard's variables, replaced by values PromQL parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__range", "6h", "$__interval", "30s", "$job", "promgate", "$namespace", "default")

// labelValues is Grafana's variable query, not PromQL: its first argument is a selector.
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardQueries are every PromQL expression of the dashboard, by where they are.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(repoFile(t, "config/grafana/promgate.json"), &dash))
	exprs := map[string]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs[fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, ok := v.Query.(map[string]any)
		require.True(t, ok, "variable %s has a query", v.Name)
		m := labelValues.FindStringSubmatch(q["query"].(string))
		require.NotNil(t, m, "variable %s is a label_values query", v.Name)
		exprs["variable "+v.Name] = m[1]
	}
	return exprs
}

// ruleQueries are the alert expressions of the rendered PrometheusRule.
func ruleQueries(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	rule := Find(objs, "PrometheusRule", "promgate")
	require.NotNil(t, rule)
	groups, _, err := unstructured.NestedSlice(rule.Object, "spec", "groups")
	require.NoError(t, err)
	exprs := map[string]string{}
	for _, g := range groups {
		rules, _, err := unstructured.NestedSlice(g.(map[string]any), "rules")
		require.NoError(t, err)
		for _, r := range rules {
			r := r.(map[string]any)
			exprs["alert "+r["alert"].(string)] = r["expr"].(string)
		}
	}
	return exprs
}

// metricNames are the metric names expr selects, by name or by a __name__ matcher.
func metricNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			names = append(names, vs.Name)
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual && m.Value != vs.Name {
				names = append(names, m.Value)
			}
		}
		return nil
	})
	return names
}

// TestPromQLUsesServedMetrics parses every expression of the dashboard and of the alert
// rules with Prometheus' parser and checks each metric it names is one the controller
// serves; and the dashboard shows every metric promgate itself exports.
func TestPromQLUsesServedMetrics(t *testing.T) {
	served := servedMetrics(t)
	exprs := dashboardQueries(t)
	require.Greater(t, len(exprs), 20)
	rules := ruleQueries(t, kustomize(t, "config/prometheus"))
	require.Len(t, rules, 4)
	shown := map[string]bool{}
	check := func(where, text string, dashboard bool) {
		expr, err := parser.ParseExpr(grafanaVars.Replace(text))
		if !assert.NoError(t, err, "%s: %s", where, text) {
			return
		}
		names := metricNames(expr)
		assert.NotEmpty(t, names, "%s selects no metric", where)
		for _, n := range names {
			assert.True(t, served(n), "%s queries %s, which the controller does not serve", where, n)
			if dashboard {
				shown[n] = true
			}
		}
	}
	for where, e := range exprs {
		check(where, e, true)
	}
	for where, e := range rules {
		check(where, e, false)
	}
	require.False(t, served("promgate_no_such_metric_total"), "the probe tells a missing metric")

	own := &recorder{}
	_, err := analysis.NewMetrics(own)
	require.NoError(t, err)
	_, err = shared.NewExecutor(own, shared.Options{})
	require.NoError(t, err)
	_, err = rollout.NewMetrics(own)
	require.NoError(t, err)
	require.NoError(t, rollout.RegisterRolloutCount(own, nil, ""))
	require.NotEmpty(t, own.names)
	for _, name := range own.names {
		assert.True(t, shown[name] || shown[name+"_bucket"] || shown[name+"_count"], "the dashboard shows no panel of %s", name)
	}
}

// recorder is a Registerer that keeps the names its collectors describe, vectors with no
// series included.
type recorder struct{ names []string }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			return fmt.Errorf("no name in %s", d)
		}
		r.names = append(r.names, m[1])
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }
