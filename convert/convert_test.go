package convert

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers/shared"
	"github.com/promgate/promgate/test/admission"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// providerOf is the --provider each corpus file is converted with.
func providerOf(file string) string {
	if strings.Contains(file, "nginx") {
		return "nginx"
	}
	return "istio"
}

// corpus converts each input of testdata.
func corpus(t *testing.T) map[string][]Object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(t, err)
	out := map[string][]Object{}
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.yaml") {
			continue
		}
		in, err := os.Open(f)
		require.NoError(t, err)
		objs, err := Convert(in, Options{Provider: providerOf(f)})
		in.Close()
		require.NoError(t, err, f)
		out[f] = objs
	}
	require.NotEmpty(t, out)
	return out
}

// TestCorpusGolden: what convert prints for each input, notes included.
func TestCorpusGolden(t *testing.T) {
	for f, objs := range corpus(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, Write(&b, objs))
			golden := strings.TrimSuffix(f, ".yaml") + ".golden.yaml"
			if *update {
				require.NoError(t, os.WriteFile(golden, b.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./convert -update to write it")
			assert.Equal(t, string(want), b.String())
		})
	}
}

// TestCorpusIsAdmittedAndValid: every object convert prints is what the API server admits
// (promgate's kinds through the generated CRDs, offline; a Deployment as apps/v1 decodes
// it), and every template passes the checks lint makes.
func TestCorpusIsAdmittedAndValid(t *testing.T) {
	crds := map[string]*admission.CRD{}
	for kind, plural := range map[string]string{"AnalysisTemplate": "analysistemplates", "ClusterAnalysisTemplate": "clusteranalysistemplates", "AnalysisRun": "analysisruns", "Rollout": "rollouts"} {
		crd, err := admission.Load(plural)
		require.NoError(t, err)
		crds[kind] = crd
	}
	exec, err := shared.NewExecutor(nil, shared.Options{})
	require.NoError(t, err)
	engine := analysis.NewEngine(exec, "", analysis.Cluster{})
	kinds := map[string]int{}
	for f, objs := range corpus(t) {
		for _, o := range objs {
			if o.Object == nil {
				continue
			}
			doc, err := yaml.Marshal(o.Object)
			require.NoError(t, err)
			kind, _ := o.Object["kind"].(string)
			kinds[kind]++
			name := filepath.Base(f) + ": " + o.From + " -> " + kind
			switch kind {
			case "Deployment":
				var d appsv1.Deployment
				require.NoError(t, yaml.UnmarshalStrict(doc, &d), name)
				assert.NotEmpty(t, d.Spec.Template.Spec.Containers, name)
			case "AnalysisTemplate", "ClusterAnalysisTemplate":
				errs, err := crds[kind].Create(doc)
				require.NoError(t, err)
				assert.Empty(t, errs, name)
				var at v1alpha1.AnalysisTemplate
				require.NoError(t, yaml.UnmarshalStrict(doc, &at), name)
				problems, warnings := engine.ValidateTemplate(context.Background(), &at.Spec)
				assert.Empty(t, problems, name)
				assert.Empty(t, warnings, name)
			default:
				crd, ok := crds[kind]
				require.True(t, ok, "%s: a kind convert should not print", name)
				errs, err := crd.Create(doc)
				require.NoError(t, err)
				assert.Empty(t, errs, name)
			}
		}
	}
	for _, k := range []string{"Deployment", "Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun"} {
		assert.NotZero(t, kinds[k], "the corpus converts to a %s", k)
	}
}
