package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestConvertCorpusLints: the templates promgate convert prints from the corpus of
// convert/testdata pass promgate lint as they are.
func TestConvertCorpusLints(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "convert", "testdata", "*.yaml"))
	require.NoError(t, err)
	var inputs []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.yaml") {
			inputs = append(inputs, f)
		}
	}
	require.NotEmpty(t, inputs)
	for _, f := range inputs {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, stderr strings.Builder
			args := []string{f}
			if strings.Contains(f, "nginx") {
				args = append([]string{"--provider", "nginx"}, args...)
			}
			require.Equal(t, exitSuccessful, runConvert(args, nil, &out, &stderr), stderr.String())
			var templates []string
			for _, doc := range strings.Split(out.String(), "\n---\n") {
				var head struct{ Kind string }
				require.NoError(t, yaml.Unmarshal([]byte(doc), &head))
				if head.Kind == "AnalysisTemplate" || head.Kind == "ClusterAnalysisTemplate" {
					templates = append(templates, doc)
				}
			}
			if len(templates) == 0 {
				return
			}
			file := filepath.Join(t.TempDir(), "converted.yaml")
			require.NoError(t, os.WriteFile(file, []byte(strings.Join(templates, "\n---\n")), 0o644))
			var lintOut, lintErr strings.Builder
			assert.Equal(t, exitSuccessful, lint([]string{file}, &lintOut, &lintErr), lintOut.String()+lintErr.String())
		})
	}
}

func TestConvertBadInput(t *testing.T) {
	var out, stderr strings.Builder
	assert.Equal(t, exitInvalidInput, runConvert(nil, nil, &out, &stderr))
	assert.Contains(t, stderr.String(), "no file given")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("kind: [\n"), 0o644))
	stderr.Reset()
	assert.Equal(t, exitInvalidInput, runConvert([]string{bad}, nil, &out, &stderr))
	assert.Contains(t, stderr.String(), "document 1")

	stderr.Reset()
	assert.Equal(t, exitInvalidInput, runConvert([]string{"--provider", "traefik", bad}, nil, &out, &stderr))
	assert.Contains(t, stderr.String(), `provider "traefik" is not one of istio, linkerd, nginx, contour, gatewayapi, kubernetes`)

	out.Reset()
	stderr.Reset()
	in := strings.NewReader("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}}\n")
	assert.Equal(t, exitSuccessful, runConvert([]string{"-"}, in, &out, &stderr), stderr.String())
	assert.Contains(t, out.String(), "# promgate convert: from v1 Service web (not an Argo Rollouts or Flagger object: printed as it is)\n")
	assert.Contains(t, out.String(), "kind: Service")
}
