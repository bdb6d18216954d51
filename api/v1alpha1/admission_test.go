package v1alpha1_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	admissionpkg "github.com/promgate/promgate/test/admission"
	"github.com/promgate/promgate/test/testbin"
)

// admission checks objects against a generated CRD the way the API server does on create.
type admission struct{ crd *admissionpkg.CRD }

func newAdmission(t *testing.T, plural string) *admission {
	t.Helper()
	crd, err := admissionpkg.Load(plural)
	require.NoError(t, err)
	return &admission{crd: crd}
}

// create returns what the API server would say about the object written as YAML.
func (a *admission) create(t *testing.T, doc string) field.ErrorList {
	t.Helper()
	errs, err := a.crd.Create([]byte(doc))
	require.NoError(t, err)
	return errs
}

func TestCRDsAreAcceptedByTheAPIServer(t *testing.T) {
	for _, plural := range []string{"analysistemplates", "clusteranalysistemplates", "analysisruns", "rollouts"} {
		t.Run(plural, func(t *testing.T) { newAdmission(t, plural) })
	}
}

// argoTemplate is an Argo Rollouts template as written, apiVersion changed: args in count,
// limits and durations, Argo's disabled values, Argo's provider shapes, and a provider
// promgate does not implement (admitted, so that the controller can say what to use).
const argoTemplate = `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: argo, namespace: default}
spec:
  args:
  - {name: count, value: "5"}
  - {name: delay, value: 30s}
  - name: app
    valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
  templates:
  - {templateName: shared, clusterScope: true}
  dryRun: [{metricName: ".*"}]
  measurementRetention: [{metricName: ".*", limit: 20}]
  metrics:
  - name: success-rate
    interval: 1m
    initialDelay: '{{args.delay}}'
    count: '{{args.count}}'
    failureLimit: -1
    consecutiveSuccessLimit: 3
    successCondition: result[0] >= 0.95
    provider:
      prometheus:
        address: '{{args.address}}'
        timeout: 40
        insecure: true
        query: sum(rate(http_requests_total{app="{{args.app}}"}[5m]))
        rangeQuery: {start: 'now() - duration("{{args.delay}}")', end: now(), step: 1m}
        authentication: {sigv4: {region: us-east-1}}
  - name: smoke
    provider:
      web:
        method: PUT
        url: https://smoke.example/run
        timeoutSeconds: 20
        jsonBody: {service: checkout, checks: [health, login]}
        authentication: {oauth2: {tokenUrl: https://auth.example/token, clientId: x, clientSecret: '{{args.secret}}'}}
  - name: load-test
    provider:
      job:
        metadata: {labels: {team: checkout}}
        spec:
          backoffLimit: 1
          template:
            spec:
              restartPolicy: Never
              containers: [{name: k6, image: grafana/k6:1.0.0}]
  - name: dd
    provider:
      datadog: {query: "avg:requests.error.rate{*}", interval: 5m}
`

func TestAdmissionOfArgoShapes(t *testing.T) {
	at := newAdmission(t, "analysistemplates")
	assert.Empty(t, at.create(t, argoTemplate))

	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"failureLimit below -1", "failureLimit: -1", "failureLimit: -2", "failureLimit is -1 (disabled) or more"},
		{"negative count", "count: '{{args.count}}'", "count: -3", "count may not be negative"},
		{"count without interval", "    interval: 1m\n    initialDelay: '{{args.delay}}'\n    count: '{{args.count}}'\n", "    count: 5\n", "count > 1 requires interval"},
		{"no provider", "      datadog: {query: \"avg:requests.error.rate{*}\", interval: 5m}\n", "      {}\n", "exactly one provider"},
		{"an unsupported provider beside another", "      datadog:", "      web: {url: http://x}\n      datadog:", "exactly one provider"},
		{"a duration that is not one", "initialDelay: '{{args.delay}}'", "initialDelay: soon", "spec.metrics[0].initialDelay"},
		{"body and jsonBody", "        timeoutSeconds: 20\n", "        body: '{}'\n", "body and jsonBody are mutually exclusive"},
		{"range and rangeQuery", "        insecure: true\n", "        range: {window: 5m}\n", "range and rangeQuery are mutually exclusive"},
		{"two sources for an arg", "valueFrom: {fieldRef:", "valueFrom: {secretKeyRef: {name: s, key: k}, fieldRef:", "exactly one of secretKeyRef and fieldRef"},
		{"two Argo authentications", "{sigv4: {region: us-east-1}}", "{sigv4: {region: us-east-1}, basicAuth: {username: u}}", "at most one of sigv4, oauth2 and basicAuth"},
	} {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			doc := strings.Replace(argoTemplate, tc.from, tc.to, 1)
			require.NotEqual(t, argoTemplate, doc, "the case changes nothing")
			errs := at.create(t, doc)
			require.NotEmpty(t, errs)
			assert.Contains(t, errs.ToAggregate().Error(), tc.want)
		})
	}

	t.Run("a template of included templates only", func(t *testing.T) {
		assert.Empty(t, at.create(t, "apiVersion: promgate.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: all}\nspec:\n  templates: [{templateName: a}, {templateName: b}]\n"))
		errs := at.create(t, "apiVersion: promgate.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: none}\nspec: {args: [{name: a}]}\n")
		assert.Contains(t, errs.ToAggregate().Error(), "at least one metric or one included template is required")
	})

	t.Run("the job spec and the unsupported providers are kept as written", func(t *testing.T) {
		j, err := yaml.YAMLToJSON([]byte(argoTemplate))
		require.NoError(t, err)
		var obj map[string]any
		require.NoError(t, json.Unmarshal(j, &obj))
		at.crd.Prune(obj)
		metrics := obj["spec"].(map[string]any)["metrics"].([]any)
		job := metrics[2].(map[string]any)["provider"].(map[string]any)["job"].(map[string]any)
		assert.Equal(t, int64(1), job["spec"].(map[string]any)["backoffLimit"])
		dd := metrics[3].(map[string]any)["provider"].(map[string]any)["datadog"].(map[string]any)
		assert.Equal(t, "5m", dd["interval"])
	})
}

func TestAdmissionOfRolloutFieldRefArgs(t *testing.T) {
	ro := newAdmission(t, "rollouts")
	const rollout = `apiVersion: promgate.io/v1alpha1
kind: Rollout
metadata: {name: checkout, namespace: default}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: checkout}
  strategy:
    canary:
      steps:
      - analysis:
          templates: [{templateName: success-rate}]
          args:
          - name: app
            valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
`
	assert.Empty(t, ro.create(t, rollout))
	errs := ro.create(t, strings.Replace(rollout, "valueFrom: {fieldRef:", "valueFrom: {podTemplateHashValue: Canary, fieldRef:", 1))
	assert.Contains(t, errs.ToAggregate().Error(), "exactly one of secretKeyRef, podTemplateHashValue and fieldRef")
}

func TestAdmissionOfIstioRouting(t *testing.T) {
	ro := newAdmission(t, "rollouts")
	const rollout = `apiVersion: promgate.io/v1alpha1
kind: Rollout
metadata: {name: checkout, namespace: default}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: checkout}
  strategy:
    canary:
      steps: [{traffic: 10%}]
      trafficRoutings:
      - service: checkout
        istio:
          virtualService: {name: checkout, routes: [primary]}
          destinationRule: {name: checkout, stableSubsetName: stable, canarySubsetName: canary}
`
	assert.Empty(t, ro.create(t, rollout))
	errs := ro.create(t, strings.Replace(rollout, "canarySubsetName: canary", "canarySubsetName: stable", 1))
	assert.Contains(t, errs.ToAggregate().Error(), "stableSubsetName and canarySubsetName must differ")
	errs = ro.create(t, strings.Replace(rollout, "      - service: checkout\n", "      - service: checkout\n        gateway: {httpRouteName: checkout}\n", 1))
	assert.Contains(t, errs.ToAggregate().Error(), "ingress, gateway and istio are mutually exclusive")
	errs = ro.create(t, strings.Replace(rollout, "virtualService: {name: checkout, routes: [primary]}", "virtualService: {routes: [primary]}", 1))
	assert.Contains(t, errs.ToAggregate().Error(), "spec.strategy.canary.trafficRoutings[0].istio.virtualService.name")
}

// TestArgoCorpusIsAdmitted: the templates lint's Argo corpus holds are what the API server
// accepts too.
func TestArgoCorpusIsAdmitted(t *testing.T) {
	root, err := testbin.RepoRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "cmd", "promgate", "testdata", "argo", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	byKind := map[string]*admission{"AnalysisTemplate": newAdmission(t, "analysistemplates"), "ClusterAnalysisTemplate": newAdmission(t, "clusteranalysistemplates")}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, doc := range strings.Split(string(b), "\n---\n") {
			var head struct{ Kind string }
			require.NoError(t, yaml.Unmarshal([]byte(doc), &head))
			a := byKind[head.Kind]
			require.NotNil(t, a, "%s document %d: kind %q", f, i+1, head.Kind)
			assert.Empty(t, a.create(t, doc), "%s document %d", filepath.Base(f), i+1)
		}
	}
}
