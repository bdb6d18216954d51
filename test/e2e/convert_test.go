package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/promgate/promgate/convert"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/testbin"
)

// TestConvertedCorpusIsAdmitted: every object promgate convert prints from the corpus of
// convert/testdata is created by the bed's API server as it is printed.
func TestConvertedCorpusIsAdmitted(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	ctx := context.Background()
	root, err := testbin.RepoRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "convert", "testdata", "*.yaml"))
	require.NoError(t, err)
	namespaces := map[string]bool{"default": true}
	created := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.yaml") {
			continue
		}
		in, err := os.Open(f)
		require.NoError(t, err)
		provider := "istio"
		if strings.Contains(f, "nginx") {
			provider = "nginx"
		}
		objs, err := convert.Convert(in, convert.Options{Provider: provider})
		in.Close()
		require.NoError(t, err, f)
		for _, o := range objs {
			if o.Object == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: o.Object}
			if ns := u.GetNamespace(); ns != "" && !namespaces[ns] {
				err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
				require.True(t, err == nil || apierrors.IsAlreadyExists(err), "creating namespace %s: %v", ns, err)
				namespaces[ns] = true
			}
			assert.NoError(t, cp.Client.Create(ctx, u), "%s: %s as %s", filepath.Base(f), o.From, u.GetKind())
			created++
		}
	}
	assert.Greater(t, created, 10, "the corpus converts to objects")
}
