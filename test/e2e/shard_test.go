package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/trafficsim"
)

// shardLabel is the label the shards of TestShards select on.
const shardLabel = "promgate.io/shard"

// TestShards runs two controllers with disjoint --shard-label-selector, each electing its
// own leader: each releases only its own Rollouts and measures only their runs, a Rollout
// in no shard is left alone (and the per-shard gauges add up to less than the cluster's
// Rollouts), and a Rollout labelled into a shard is taken up by it.
func TestShards(t *testing.T) {
	apps := []string{"shard-a", "shard-b", "shard-none"}
	var entries []trafficsim.Entry
	for _, app := range apps {
		entries = append(entries, trafficsim.Entry{Kind: trafficsim.KindHTTPRoute, Name: app, RPS: 50})
	}
	fb := fixtures.StartBed(t, fixtures.BedOptions{Simulator: trafficsim.Config{Entries: entries}, NoController: true})
	b := &rolloutBed{Cluster: fb.Cluster, sim: fb.Sim, ns: fb.Namespace}
	b.create(t, fixtures.ErrorRateTemplate(b.ns, "error-rate", "0.05"))
	ctx := context.Background()
	kubeconfig, err := testbed.ControllerKubeconfig(ctx, fb.ControlPlane, b.ns)
	require.NoError(t, err)
	controllers := map[string]*testbed.Promgate{}
	for _, shard := range []string{"a", "b"} {
		controllers[shard] = testbed.StartPromgateAs(t, fb.ControlPlane, testbed.PromgateOptions{
			Name: "promgate-" + shard, Kubeconfig: kubeconfig,
			Args: append([]string{"--shard-label-selector=" + shardLabel + "=" + shard, "--leader-elect", "--leader-election-namespace=" + b.ns}, fb.Args...),
		})
	}

	strategy := v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Analysis: fixtures.Analysis("error-rate")},
		{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
	}}}
	for _, app := range apps {
		b.create(t, fixtures.Deployment(b.ns, app, 3), fixtures.Service(b.ns, app), fixtures.HTTPRoute(b.ns, app))
		strategy := *strategy.DeepCopy()
		strategy.Canary.TrafficRoutings = fixtures.GatewayRouting(app)
		ro := fixtures.Rollout(b.ns, app, strategy)
		if shard, ok := strings.CutPrefix(app, "shard-"); ok && shard != "none" {
			ro.Labels = map[string]string{shardLabel: shard}
		}
		b.create(t, ro)
	}
	for _, app := range apps[:2] {
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy)
	}

	blue := map[string]string{}
	for _, app := range apps[:2] {
		blue[app] = b.get(t, app).Status.StableRevision
		b.setTemplate(t, app, "echoserver:"+app+"-2", "0")
	}
	for _, app := range apps[:2] {
		ro := b.waitFor(t, app, 2*time.Minute, "its release settled", func(ro *v1alpha1.Rollout) bool {
			return ro.Status.CanaryRevision == "" && ro.Status.StableRevision != blue[app] && ro.Status.Report != nil
		})
		assert.Equal(t, v1alpha1.RolloutPhaseCompleted, ro.Status.Report.Outcome, app)
		var runs v1alpha1.AnalysisRunList
		require.NoError(t, b.Client.List(ctx, &runs, client.InNamespace(b.ns), client.MatchingLabels{"promgate.io/rollout": app}))
		require.NotEmpty(t, runs.Items, "%s's step analysis ran", app)
		for _, run := range runs.Items {
			assert.Equal(t, ro.Labels[shardLabel], run.Labels[shardLabel], "run %s carries its shard, so only that shard's controller measures it", run.Name)
			assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, run.Status.Phase, run.Name)
		}
	}

	// Each controller reports only its own Rollouts; the Rollout in no shard, no one.
	for shard, pg := range controllers {
		page := scrapeText(t, pg.MetricsURL)
		assert.Equal(t, "1", sample(page, `promgate_rollouts{shard="`+shardLabel+"="+shard+`"}`), "shard %s owns one Rollout", shard)
		for _, app := range apps {
			reported := false
			for _, line := range strings.Split(page, "\n") {
				reported = reported || (strings.HasPrefix(line, "promgate_rollout_info{") && strings.Contains(line, `rollout="`+app+`"`))
			}
			assert.Equal(t, app == "shard-"+shard, reported, "shard %s reports Rollout %s", shard, app)
		}
	}
	none := b.get(t, "shard-none")
	assert.Empty(t, none.Status.Phase, "a Rollout in no shard is released by no one")
	assert.Empty(t, none.Finalizers)
	var d = fixtures.Deployment(b.ns, "shard-none", 3)
	require.NoError(t, b.Client.Get(ctx, client.ObjectKeyFromObject(d), d))
	assert.NotContains(t, d.Annotations, "promgate.io/rollout", "nor is its Deployment taken over")

	var leases coordinationv1.LeaseList
	require.NoError(t, b.Client.List(ctx, &leases, client.InNamespace(b.ns)))
	holders := map[string]string{}
	for _, l := range leases.Items {
		if strings.HasPrefix(l.Name, "promgate-controller") {
			holders[l.Name] = ptr.Deref(l.Spec.HolderIdentity, "")
		}
	}
	require.Len(t, holders, 2, "each shard elects its leader under its own Lease: %v", holders)
	for name, holder := range holders {
		assert.NotEmpty(t, holder, "Lease %s has a leader", name)
	}

	// Labelled into shard b, the Rollout is b's.
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ro := b.get(t, "shard-none")
		ro.Labels = map[string]string{shardLabel: "b"}
		return b.Client.Update(ctx, ro)
	}))
	b.waitPhase(t, "shard-none", time.Minute, v1alpha1.RolloutPhaseHealthy)
	require.Eventually(t, func() bool {
		return sample(scrapeText(t, controllers["b"].MetricsURL), `promgate_rollouts{shard="`+shardLabel+`=b"}`) == "2"
	}, 30*time.Second, 200*time.Millisecond, "shard b counts it")
}

// scrapeText is a /metrics page.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// sample is the value of one series on a /metrics page, "" when it is not there.
func sample(page, series string) string {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}
