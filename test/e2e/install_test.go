package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/config/rbac"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/install"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/testbin"
)

// installSteps is the release every install test walks: a measured 20% canary, a pause for
// a human at 50%, then everything.
func installSteps(template string) []v1alpha1.RolloutStep {
	return []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Analysis: fixtures.Analysis(template)},
		{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}},
		{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
	}
}

// installBed is the release helpers over an installed controller, in namespace ns.
func installBed(t *testing.T, c *testbed.Cluster, pg *testbed.Promgate, ns string) *restartBed {
	t.Helper()
	if err := c.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	web := &webValues{v: map[string]float64{}}
	return &restartBed{rolloutBed: &rolloutBed{Cluster: c, pg: pg, ns: ns}, web: web, webAddr: testbed.Serve(t, web)}
}

// userKubectl runs the real kubectl as a user of the bed and returns its output and error.
func userKubectl(c *testbed.Cluster, kubeconfig, ns string, args ...string) (string, error) {
	out, err := exec.Command(c.Kubectl, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// bindUser gives user the built-in ClusterRole role in namespace ns only, and waits until
// the aggregated rules let them do verb on the Rollouts' subresource (empty: the Rollouts).
func bindUser(t *testing.T, c *testbed.Cluster, user, role, ns, verb, subresource string) string {
	t.Helper()
	kubeconfig, err := c.UserKubeconfig(user)
	require.NoError(t, err)
	require.NoError(t, c.Client.Create(context.Background(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}))
	args := []string{"auth", "can-i", verb, "rollouts.promgate.io"}
	if subresource != "" {
		args = append(args, "--subresource="+subresource)
	}
	// The controller manager's clusterrole-aggregation controller adds promgate's rules to
	// the built-in role a moment after the install.
	require.Eventually(t, func() bool {
		out, _ := userKubectl(c, kubeconfig, ns, args...)
		return strings.TrimSpace(out) == "yes"
	}, 30*time.Second, 200*time.Millisecond, "%s (%s in %s) never may %s rollouts %s", user, role, ns, verb, subresource)
	return kubeconfig
}

// TestInstall installs promgate on the bed as a user would, from both renderings, and runs
// it as installed: the controller as its ServiceAccount with the Deployment's flags, the
// built-in user roles driving releases, and a controller short of a permission saying so.
// The ServiceMonitor and PrometheusRule are left out: the bed has no Prometheus Operator
// CRDs (the render tests check them).
func TestInstall(t *testing.T) {
	c := testbed.StartCluster(t)
	ctx := context.Background()
	kobjs, err := install.Kustomize(ctx, "config/default")
	require.NoError(t, err)
	in := fixtures.InstallRendering(t, c, kobjs)

	t.Run("both renderings and the optional parts are accepted by server-side apply", func(t *testing.T) {
		// The README's command, as it is, over the install: the client-side apply works too.
		root, err := testbin.RepoRoot()
		require.NoError(t, err)
		out, err := exec.Command(c.Kubectl, "--kubeconfig", c.Kubeconfig, "apply", "-k", filepath.Join(root, "config", "default")).CombinedOutput()
		require.NoError(t, err, "kubectl apply -k config/default: %s", out)
		hobjs, err := install.HelmAs(ctx, "promgate-helm", "promgate-helm", "--set", "dashboards.enabled=true")
		require.NoError(t, err)
		fixtures.InstallRendering(t, c, hobjs)
		grafana, err := install.Kustomize(ctx, "config/grafana")
		require.NoError(t, err)
		require.NoError(t, fixtures.Apply(ctx, c.Client, grafana))
		samples, err := install.Kustomize(ctx, "config/samples")
		require.NoError(t, err)
		require.NoError(t, c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}))
		for _, o := range samples {
			o.SetNamespace("demo")
		}
		require.NoError(t, fixtures.Apply(ctx, c.Client, samples))

		// promgate-system enforces the restricted Pod Security Standard (a privileged pod is
		// refused there), and the ReplicaSet's pods are admitted: the pod template meets it.
		privileged := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "privileged", Namespace: install.Namespace},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "c", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			}}},
		}
		err = c.Client.Create(ctx, privileged, client.DryRunAll)
		require.True(t, apierrors.IsForbidden(err), "a privileged pod is refused: %v", err)
		assert.Contains(t, err.Error(), `violates PodSecurity "restricted`)
		require.Eventually(t, func() bool {
			var pods corev1.PodList
			err := c.Client.List(ctx, &pods, client.InNamespace(install.Namespace), client.MatchingLabels{"app.kubernetes.io/name": "promgate"})
			return err == nil && len(pods.Items) == 2
		}, time.Minute, 200*time.Millisecond, "the Deployment's two pods pass the restricted Pod Security Standard")
	})

	pg := in.StartController(t, "promgate")
	b := installBed(t, c, pg, "team-a")
	const app = "checkout"

	t.Run("the controller runs as its ServiceAccount with the rendered flags", func(t *testing.T) {
		assert.Contains(t, pg.Args, "--leader-elect")
		assert.Contains(t, pg.Args, "--leader-election-namespace="+install.Namespace, "$(POD_NAMESPACE) expanded as the kubelet does")
		assert.Contains(t, pg.Args, "--prometheus-address=http://prometheus-operated.monitoring.svc:9090")
		log, err := os.ReadFile(pg.LogPath)
		require.NoError(t, err)
		assert.Contains(t, string(log), "the controller holds every RBAC permission it needs")
		assert.True(t, fixtures.WaitLeader(t, 30*time.Second, pg) == 0, "it leads through the Lease Role")

		b.errorRateTemplate(t, app)
		b.app(t, app)
		b.httpRoute(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: installSteps(app), TrafficRoutings: fixtures.GatewayRouting(app)}})
		b.newRevision(t, app)
		ro := b.waitStep(t, app, 2, v1alpha1.StepPaused, 2*time.Minute)
		assert.Equal(t, v1alpha1.RolloutPhasePaused, ro.Status.Phase)
		assert.Equal(t, []map[string]int32{{app: 50, app + "-canary": 50}}, b.routeWeights(t, app))
	})

	t.Run("a namespace editor approves the paused release with the documented status patch", func(t *testing.T) {
		alice := bindUser(t, c, "alice", "edit", "team-a", "patch", "status")
		out, err := userKubectl(c, alice, "team-b", "auth", "can-i", "patch", "rollouts.promgate.io", "--subresource=status")
		assert.Error(t, err)
		assert.Equal(t, "no", strings.TrimSpace(out), "an editor of team-a drives no release of team-b")
		out, err = userKubectl(c, alice, "team-a", "patch", "rollout", app, "--subresource=status", "--type=merge", "-p", `{"status":{"currentStepState":"StepReady"}}`)
		require.NoError(t, err, out)
		ro := b.waitPhase(t, app, 2*time.Minute, v1alpha1.RolloutPhaseCompleted)
		require.NotNil(t, ro.Status.Report)
		assert.Equal(t, v1alpha1.DecidedByHuman, ro.Status.Report.Steps[1].DecidedBy, "the editor's approval decided step 2")
	})

	t.Run("a namespace viewer reads releases and cannot drive them", func(t *testing.T) {
		bob := bindUser(t, c, "bob", "view", "team-a", "get", "")
		out, err := userKubectl(c, bob, "team-a", "get", "rollout", app)
		require.NoError(t, err, out)
		assert.Contains(t, out, "Completed")
		out, err = userKubectl(c, bob, "team-a", "get", "analysisruns,analysistemplates")
		require.NoError(t, err, out)
		out, err = userKubectl(c, bob, "team-a", "patch", "rollout", app, "--subresource=status", "--type=merge", "-p", `{"status":{"abort":true}}`)
		require.Error(t, err)
		assert.Contains(t, out, "forbidden")
		assert.Equal(t, v1alpha1.RolloutPhaseCompleted, b.get(t, app).Status.Phase)
	})

	t.Run("a firing alert aborts a release through the installed webhook", func(t *testing.T) {
		const bad = "payments"
		b.app(t, bad)
		b.httpRoute(t, bad)
		ro := fixtures.Rollout(b.ns, bad, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}},
				{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
			},
			TrafficRoutings: fixtures.GatewayRouting(bad),
		}})
		ro.Spec.AbortOn = &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname="PaymentsErrors"`}}}}
		b.create(t, ro)
		b.waitPhase(t, bad, time.Minute, v1alpha1.RolloutPhaseHealthy)
		b.newRevision(t, bad)
		b.waitStep(t, bad, 1, v1alpha1.StepPaused, time.Minute)
		_, code, err := fixtures.PostAlert(pg.Webhook, "wrong-token", "firing", map[string]string{"alertname": "PaymentsErrors"})
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, code, "the token is the Secret's")
		marked, code, err := fixtures.PostAlert(pg.Webhook, fixtures.WebhookToken, "firing", map[string]string{"alertname": "PaymentsErrors"})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, []string{b.ns + "/" + bad}, marked)
		got := b.waitPhase(t, bad, time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Contains(t, got.Status.Message, "alert PaymentsErrors firing")
		assert.Equal(t, []map[string]int32{{bad: 100, bad + "-canary": 0}}, b.routeWeights(t, bad))
	})

	t.Run("a controller short of an RBAC rule says which and stays unready until it is granted", func(t *testing.T) {
		rules, err := rbac.ControllerRules()
		require.NoError(t, err)
		var short []rbacv1.PolicyRule
		for _, r := range rules {
			if len(r.APIGroups) == 1 && r.APIGroups[0] == "" && len(r.Resources) == 1 && r.Resources[0] == "pods" {
				continue
			}
			short = append(short, r)
		}
		require.Len(t, short, len(rules)-1, "the role has a rule for listing pods to leave out")
		const sa = "promgate-short"
		require.NoError(t, c.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: install.Namespace}}))
		for _, o := range []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: short},
			&rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: sa},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sa},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: install.Namespace}},
			},
			&rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: install.Namespace},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "promgate-leader-election"},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: install.Namespace}},
			},
		} {
			require.NoError(t, c.Client.Create(ctx, o))
		}
		kubeconfig, err := c.ServiceAccountKubeconfig(ctx, install.Namespace, sa)
		require.NoError(t, err)
		short1 := testbed.StartPromgateAs(t, c.ControlPlane, testbed.PromgateOptions{Name: sa, Kubeconfig: kubeconfig, Args: in.Args, Env: in.Env, Unready: true})

		require.Eventually(t, func() bool {
			log, _ := os.ReadFile(short1.LogPath)
			return strings.Contains(string(log), "RBAC denies the controller permissions it needs")
		}, 30*time.Second, 100*time.Millisecond)
		log, err := os.ReadFile(short1.LogPath)
		require.NoError(t, err)
		var line string
		for l := range strings.SplitSeq(string(log), "\n") {
			if strings.Contains(l, "RBAC denies") {
				line = l
			}
		}
		// The pods rule holds every verb on pods (list; patch for batch labels; delete for
		// a StatefulSet's rollback): the line names each.
		assert.Contains(t, line, `"missing":"delete pods, list pods, patch pods"`, "one line names the verbs and the resource")
		assert.Contains(t, line, "system:serviceaccount:"+install.Namespace+":"+sa)
		for range 3 {
			assert.Equal(t, http.StatusInternalServerError, probe(t, short1.ProbeURL+"/readyz"))
			assert.Equal(t, http.StatusOK, probe(t, short1.ProbeURL+"/healthz"), "alive: not restarted by its liveness probe")
			time.Sleep(time.Second)
		}
		exited, _ := short1.Exited()
		assert.False(t, exited, "it waits rather than crash-looping")

		require.NoError(t, c.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa + "-full"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "promgate-controller"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: install.Namespace}},
		}))
		assert.Eventually(t, func() bool { return probe(t, short1.ProbeURL+"/readyz") == http.StatusOK }, 45*time.Second, 200*time.Millisecond,
			"ready within a retry once the rule is granted, without a restart")
	})
}

func probe(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// countingReceiver records every release report POSTed to it.
type countingReceiver struct {
	mu    sync.Mutex
	posts int
}

func (c *countingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.posts++
	c.mu.Unlock()
}

func (c *countingReceiver) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.posts
}

// assertOnlyLeaderReconciles: the standbys have reconciled no Rollout since they started.
func assertOnlyLeaderReconciles(t *testing.T, pgs []*testbed.Promgate, leader int) {
	t.Helper()
	for i, pg := range pgs {
		n, err := fixtures.Reconciles(pg, "rollout")
		require.NoError(t, err)
		if i == leader {
			assert.Positive(t, n, "the leader reconciles")
		} else {
			assert.Zero(t, n, "standby %s reconciles nothing", pg.Name)
		}
	}
}

// TestInstallHighAvailability runs two replicas of the installed controller, with the
// chart's leader election at a 5 s lease, and kills the leader (SIGKILL) while the release
// is measured and again while it waits for a human: the standby takes over, and the
// release goes on from its status with no step repeated or skipped, no event or report
// sent twice, and only the leader reconciling. Both replicas answer the alert webhook, and
// an alert sent to the standby aborts a release.
func TestInstallHighAvailability(t *testing.T) {
	c := testbed.StartCluster(t)
	ctx := context.Background()
	objs, err := install.Helm(ctx, "--set", "leaderElection.leaseDuration=5s,leaderElection.renewDeadline=3s,leaderElection.retryPeriod=1s")
	require.NoError(t, err)
	in := fixtures.InstallRendering(t, c, objs)
	pgs := []*testbed.Promgate{in.StartController(t, "promgate-a"), in.StartController(t, "promgate-b")}
	leader := fixtures.WaitLeader(t, 30*time.Second, pgs...)
	b := installBed(t, c, pgs[leader], "default")

	const app = "ha"
	receiver := &countingReceiver{}
	b.create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "release-reports", Namespace: b.ns},
		StringData: map[string]string{"url": "http://" + testbed.Serve(t, receiver) + "/reports"},
	})
	b.errorRateTemplate(t, app)
	b.app(t, app)
	b.httpRoute(t, app)
	ro := fixtures.Rollout(b.ns, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: installSteps(app), TrafficRoutings: fixtures.GatewayRouting(app)}})
	ro.Spec.Notify = &v1alpha1.Notify{URLSecret: v1alpha1.SecretKeySelector{Name: "release-reports", Key: "url"}}
	b.create(t, ro)
	b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy)
	steps := b.recordSteps(t, app)

	for _, pg := range pgs {
		marked, code, err := fixtures.PostAlert(pg.Webhook, fixtures.WebhookToken, "resolved", map[string]string{"alertname": "Nothing"})
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, code, "%s answers the webhook, leader or not", pg.Name)
		assert.Empty(t, marked)
	}

	// failover kills the leader and waits for the other replica to take over, then starts
	// the killed one again as the standby.
	failover := func() {
		t.Helper()
		old := leader
		pgs[old].Kill()
		killed := time.Now()
		leader = fixtures.WaitLeader(t, 30*time.Second, pgs...)
		require.NotEqual(t, old, leader)
		t.Logf("%s took over %s after the kill", pgs[leader].Name, time.Since(killed).Round(time.Millisecond))
		b.pg = pgs[leader]
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		require.NoError(t, pgs[old].Restart(rctx))
	}

	b.newRevision(t, app)
	before := b.waitMeasured(t, app, 1)
	assertOnlyLeaderReconciles(t, pgs, leader)
	failover()
	killedIn := []stepAt{{1, v1alpha1.StepMetricsAnalysis}}

	b.waitStep(t, app, 2, v1alpha1.StepPaused, 2*time.Minute)
	runs := b.runsOf(t, app)
	require.Len(t, runs, 1, "one AnalysisRun: the new leader went on with the old one's")
	assert.Equal(t, before.UID, runs[0].UID)
	assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, runs[0].Status.Phase, runs[0].Status.Message)
	assert.Equal(t, int32(5), runs[0].Status.MetricResults[0].Count, "five measurements, none repeated")
	assertOnlyLeaderReconciles(t, pgs, leader)

	failover()
	killedIn = append(killedIn, stepAt{2, v1alpha1.StepPaused})
	b.waitReconciled(t, 1)
	got := b.get(t, app)
	assert.Equal(t, stepAt{2, v1alpha1.StepPaused}, stepAt{got.Status.CurrentStepIndex, got.Status.CurrentStepState}, "a pause for a human outlives the leader")
	assertOnlyLeaderReconciles(t, pgs, leader)

	b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
	got = b.waitPhase(t, app, 2*time.Minute, v1alpha1.RolloutPhaseCompleted)
	require.NotNil(t, got.Status.Report)
	var indexes []int32
	for _, st := range got.Status.Report.Steps {
		indexes = append(indexes, st.Index)
	}
	assert.Equal(t, []int32{1, 2, 3}, indexes, "the report has every step once")
	assertWalk(t, steps.states(), []stepAt{
		{1, v1alpha1.StepUpgrade}, {1, v1alpha1.StepTrafficRouting}, {1, v1alpha1.StepMetricsAnalysis}, {1, v1alpha1.StepReady},
		{2, v1alpha1.StepUpgrade}, {2, v1alpha1.StepTrafficRouting}, {2, v1alpha1.StepMetricsAnalysis}, {2, v1alpha1.StepPaused}, {2, v1alpha1.StepReady},
		{3, v1alpha1.StepUpgrade}, {3, v1alpha1.StepTrafficRouting}, {3, v1alpha1.StepMetricsAnalysis}, {3, v1alpha1.StepReady}, {3, v1alpha1.StepCompleted},
	}, killedIn)
	b.assertEvents(t, app, map[string]int32{
		"Adopted": 1, "ReleaseStarted": 1, "StepUpgrade": 2, "StepPaused": 1, "Promoted": 1, "Settled": 1, "ReleaseReport": 1,
	})
	require.Eventually(t, func() bool { return b.get(t, app).Status.Report.NotifiedAt != nil }, 30*time.Second, 100*time.Millisecond)
	time.Sleep(2 * time.Second)
	assert.Equal(t, 1, receiver.count(), "one release, one report posted")

	t.Run("an alert sent to the standby aborts the release", func(t *testing.T) {
		const bad = "ha-alert"
		b.app(t, bad)
		b.httpRoute(t, bad)
		ro := fixtures.Rollout(b.ns, bad, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}},
				{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
			},
			TrafficRoutings: fixtures.GatewayRouting(bad),
		}})
		ro.Spec.AbortOn = &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname="HAErrors"`}}}}
		b.create(t, ro)
		b.waitPhase(t, bad, time.Minute, v1alpha1.RolloutPhaseHealthy)
		b.newRevision(t, bad)
		b.waitStep(t, bad, 1, v1alpha1.StepPaused, time.Minute)
		standby := pgs[1-leader]
		marked, code, err := fixtures.PostAlert(standby.Webhook, fixtures.WebhookToken, "firing", map[string]string{"alertname": "HAErrors"})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, []string{b.ns + "/" + bad}, marked, "the standby recorded the alert")
		got := b.waitPhase(t, bad, time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Equal(t, v1alpha1.DecidedByAlert, got.Status.Report.DecidedBy)
		assert.Equal(t, []map[string]int32{{bad: 100, bad + "-canary": 0}}, b.routeWeights(t, bad))
		assertOnlyLeaderReconciles(t, pgs, leader)
	})
}
