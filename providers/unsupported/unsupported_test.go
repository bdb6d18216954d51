package unsupported

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers"
)

// TestEveryArgoProviderPromgateLacksSaysWhatToUse sets each field of MetricProvider that
// promgate does not implement and expects one line naming it and an alternative.
func TestEveryArgoProviderPromgateLacksSaysWhatToUse(t *testing.T) {
	want := []string{"datadog", "newRelic", "wavefront", "cloudWatch", "graphite", "influxdb", "skywalking", "kayenta", "plugin"}
	fs := Factories()
	require.Len(t, fs, len(want))
	path := field.NewPath("metrics").Key("m").Child("provider")
	for i, f := range fs {
		assert.Equal(t, want[i], f.Name())
		assert.True(t, Is(f))
		p := &v1alpha1.MetricProvider{}
		setField(t, p, f.Name())
		require.True(t, f.Configured(p), f.Name())
		errs := f.Check(path, p)
		require.Len(t, errs, 1)
		msg := errs[0].Field + ": " + errs[0].Detail
		assert.True(t, strings.HasPrefix(msg, "metrics[m].provider."+f.Name()+": "+f.Name()+" is an Argo Rollouts provider promgate does not implement; "), msg)
		assert.NotContains(t, msg, "\n", "one line")
		assert.Regexp(t, `prometheus|web|job|judge`, errs[0].Detail, "says what to use instead")
		_, built := f.Build(context.Background(), path, p, providers.Env{})
		require.Len(t, built, 1)
		assert.Equal(t, msg, built[0].Error(), "the controller says what lint says")
	}
	assert.False(t, Is(nil))
}

// setField sets the MetricProvider field whose JSON name is name.
func setField(t *testing.T, p *v1alpha1.MetricProvider, name string) {
	t.Helper()
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		if strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0] == name {
			v.Field(i).Set(reflect.ValueOf(&apiextensionsv1.JSON{Raw: []byte(`{"query": "x"}`)}))
			return
		}
	}
	t.Fatalf("MetricProvider has no field %s", name)
}
