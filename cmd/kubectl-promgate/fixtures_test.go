package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

// The fake cluster: Rollout web in namespace shop releases Deployment web (5 pods) from
// revision blue to green through Service web and HTTPRoute web.
const (
	ns    = "shop"
	blue  = "b1ue"
	green = "9reen"
)

// now is the tests' clock: 01:30 in Paris, where the release window opens at 02:00.
var now = time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func steps() []v1alpha1.RolloutStep {
	return []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"),
			Matches:  []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{{Name: "X-Canary", Value: "always"}}}},
			Analysis: &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "error-rate"}}},
			Pause:    &v1alpha1.RolloutPause{}},
		{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: time.Minute}}},
		{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
	}
}

func newRollout(name string, st v1alpha1.RolloutStatus) *v1alpha1.Rollout {
	return &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, CreationTimestamp: ago(48 * time.Hour)},
		Spec: v1alpha1.RolloutSpec{
			WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: steps(),
				TrafficRoutings: []v1alpha1.TrafficRouting{{Service: "web", Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: "web"}}}}},
		},
		Status: st,
	}
}

// releasingAt is a release of green at step in state.
func releasingAt(step int32, state v1alpha1.StepState) v1alpha1.RolloutStatus {
	phase := v1alpha1.RolloutPhaseProgressing
	if state == v1alpha1.StepPaused {
		phase = v1alpha1.RolloutPhasePaused
	}
	return v1alpha1.RolloutStatus{
		ObservedGeneration: 1, ObservedWorkloadGeneration: 3, Phase: phase,
		StableRevision: blue, CanaryRevision: green, CurrentStepIndex: step, CurrentStepState: state,
		Message: fmt.Sprintf("Rollout is in step(%d/3)", step),
	}
}

func labels(rev string) map[string]string {
	l := map[string]string{"app": "web"}
	if rev != "" {
		l[appsv1.DefaultDeploymentUniqueLabelKey] = rev
	}
	return l
}

func podTemplate(rev string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels(rev)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop:" + rev}, {Name: "proxy", Image: "envoy:1.31"}}},
	}
}

// cluster is what a test starts from.
type cluster struct {
	ro *v1alpha1.Rollout
	// template is the Deployment's revision; replicas the pods of each revision (ready
	// unless unready), absent for no ReplicaSet.
	template string
	replicas map[string]int32
	unready  map[string]bool
	// weight is the HTTPRoute's weight to web-canary, nil for the user's route; header adds
	// the X-Canary rule.
	weight *int32
	header bool
	runs   []*v1alpha1.AnalysisRun
	extra  []client.Object
}

func (k cluster) objects() []client.Object {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", UID: "web-uid", Generation: 3, CreationTimestamp: ago(72 * time.Hour)},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](5), Selector: &metav1.LabelSelector{MatchLabels: labels("")},
			Template: podTemplate(k.template)},
	}
	d.Spec.Template.Labels = labels("")
	objs := []client.Object{k.ro, d}
	var ready int32
	for i, rev := range []string{blue, green} {
		n, ok := k.replicas[rev]
		if !ok {
			continue
		}
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-" + rev, UID: types.UID("rs-" + rev), Labels: labels(rev),
				Annotations:       map[string]string{deploymentRevision: fmt.Sprint(i + 1)},
				CreationTimestamp: ago(time.Duration(2-i) * 24 * time.Hour),
				OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(n), Template: podTemplate(rev)},
		}
		for j := range n {
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("web-%s-%d", rev, j), Labels: labels(rev), CreationTimestamp: ago(time.Duration(2-i) * time.Hour),
					OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
				Spec:   podTemplate(rev).Spec,
				Status: corev1.PodStatus{Phase: corev1.PodRunning},
			}
			if k.unready[rev] {
				p.Status.Phase = corev1.PodPending
			} else {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true}, {Name: "proxy", Ready: true, RestartCount: int32(j % 2)}}
				rs.Status.ReadyReplicas++
				ready++
			}
			objs = append(objs, p)
		}
		rs.Status.Replicas = n
		objs = append(objs, rs)
	}
	d.Status.ReadyReplicas = ready
	route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	backend := func(name string, w *int32) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{Weight: w,
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To[gatewayv1.PortNumber](80)}}}
	}
	if k.header {
		route.Spec.Rules = append(route.Spec.Rules, gatewayv1.HTTPRouteRule{
			Matches:     []gatewayv1.HTTPRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{Name: "X-Canary", Value: "always"}}}},
			BackendRefs: []gatewayv1.HTTPBackendRef{backend("web-canary", nil)},
		})
	}
	if k.weight == nil {
		route.Spec.Rules = append(route.Spec.Rules, gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backend("web", nil)}})
	} else {
		route.Spec.Rules = append(route.Spec.Rules, gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{
			backend("web", ptr.To(100-*k.weight)), backend("web-canary", k.weight)}})
	}
	objs = append(objs, route)
	for _, r := range k.runs {
		objs = append(objs, r)
	}
	return append(objs, k.extra...)
}

// run is an AnalysisRun of rev by the Rollout, with error-rate's measurements.
func run(ro *v1alpha1.Rollout, name, rev string, phase v1alpha1.AnalysisPhase, ms ...v1alpha1.Measurement) *v1alpha1.AnalysisRun {
	r := &v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: ago(20 * time.Minute),
			Labels:          map[string]string{"promgate.io/rollout": ro.Name, "promgate.io/revision": rev},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ro, v1alpha1.GroupVersion.WithKind("Rollout"))}},
		Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{{Name: "error-rate", SuccessCondition: "result[0] < 0.05",
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: "errors"}}}}},
		Status: v1alpha1.AnalysisRunStatus{Phase: phase},
	}
	mr := v1alpha1.MetricResult{Name: "error-rate", Phase: phase, Measurements: ms}
	for _, m := range ms {
		switch m.Phase {
		case v1alpha1.AnalysisPhaseSuccessful:
			mr.Successful++
		case v1alpha1.AnalysisPhaseFailed:
			mr.Failed++
		case v1alpha1.AnalysisPhaseInconclusive:
			mr.Inconclusive++
		case v1alpha1.AnalysisPhaseError:
			mr.Error++
		}
	}
	r.Status.MetricResults = []v1alpha1.MetricResult{mr}
	return r
}

func measured(phase v1alpha1.AnalysisPhase, value string) v1alpha1.Measurement {
	return v1alpha1.Measurement{Phase: phase, Value: value}
}

// fakeClient is a fake API server holding objs; funcs, when given, intercept its calls.
func fakeClient(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) client.WithWatch {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(scheme()).WithStatusSubresource(&v1alpha1.Rollout{}).WithObjects(objs...)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

// safeBuffer is written by a command while the test reads it.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is what a command line did.
type result struct {
	stdout, stderr string
	code           int
}

// runWith runs the plugin on c with args, in namespace shop unless args say otherwise.
func runWith(ctx context.Context, c client.WithWatch, stdout, stderr *safeBuffer, args ...string) int {
	a := &app{flags: newTestFlags(), stdout: stdout, stderr: stderr, now: func() time.Time { return now },
		connect: func() (client.WithWatch, error) { return c, nil }}
	if !strings.Contains(strings.Join(args, " "), "-n ") {
		args = append(args, "-n", ns)
	}
	return a.run(ctx, args)
}

func runCmd(t *testing.T, c client.WithWatch, args ...string) result {
	t.Helper()
	var stdout, stderr safeBuffer
	code := runWith(context.Background(), c, &stdout, &stderr, args...)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func getRO(t *testing.T, c client.Client, name string) *v1alpha1.Rollout {
	t.Helper()
	var ro v1alpha1.Rollout
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ro))
	return &ro
}

func newTestFlags() *genericclioptions.ConfigFlags { return genericclioptions.NewConfigFlags(false) }

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }
