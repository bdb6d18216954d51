package job

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/providers"
)

var run = providers.Run{Namespace: "shop", Name: "checkout-7f9c-step-1", UID: types.UID("3b1d7c2e-0000-4000-8000-000000000001")}

func jobMetric() *v1alpha1.MetricProvider {
	return &v1alpha1.MetricProvider{Job: &v1alpha1.JobMetric{
		Metadata: v1alpha1.JobMetadata{Labels: map[string]string{"team": "checkout"}, Annotations: map[string]string{"purpose": "smoke"}},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "smoke", Image: "curlimages/curl:8.10.1", Args: []string{"-f", "http://checkout/health"}}},
			}},
		},
	}}
}

// bed is a Factory on fake clients: Jobs in a controller-runtime client, pods and their
// logs in a client-go clientset.
type bed struct {
	f    *Factory
	c    client.Client
	pods *k8sfake.Clientset
	logs map[string]string // container name → log text
}

func newBed(t *testing.T) *bed {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, batchv1.AddToScheme(scheme))
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	b := &bed{c: fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&batchv1.Job{}).Build(), pods: k8sfake.NewClientset(), logs: map[string]string{}}
	b.pods.PrependReactor("get", "pods/log", func(a clienttesting.Action) (bool, runtime.Object, error) {
		opts := a.(clienttesting.GenericAction).GetValue().(*corev1.PodLogOptions)
		return true, &runtime.Unknown{Raw: []byte(b.logs[opts.Container])}, nil
	})
	b.f = NewFactory(Options{Client: b.c, Pods: b.pods.CoreV1(), Poll: 3 * time.Second})
	return b
}

func (b *bed) source(t *testing.T, p *v1alpha1.MetricProvider) *Source {
	t.Helper()
	src, errs := b.f.Build(context.Background(), field.NewPath("metrics").Key("smoke").Child("provider"), p, providers.Env{Run: &run, Metric: "smoke"})
	require.Empty(t, errs)
	return src.(*Source)
}

func (b *bed) job(t *testing.T, name string) *batchv1.Job {
	t.Helper()
	var j batchv1.Job
	require.NoError(t, b.c.Get(context.Background(), types.NamespacedName{Namespace: run.Namespace, Name: name}, &j))
	return &j
}

// finish gives the Job the condition the Job controller would, and a pod with its label.
func (b *bed) finish(t *testing.T, j *batchv1.Job, c batchv1.JobConditionType, reason, msg string) {
	t.Helper()
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue, Reason: reason, Message: msg})
	require.NoError(t, b.c.Status().Update(context.Background(), j))
	for i, created := range []time.Time{time.Unix(100, 0), time.Unix(200, 0)} {
		_, err := b.pods.CoreV1().Pods(run.Namespace).Create(context.Background(), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", j.Name, i), Namespace: run.Namespace, CreationTimestamp: metav1.Time{Time: created},
				Labels: map[string]string{batchv1.ControllerUidLabel: string(j.UID)}},
			Spec: j.Spec.Template.Spec,
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
}

func fetch(t *testing.T, s *Source, seq int32) (providers.Response, error) {
	t.Helper()
	return s.Fetch(context.Background(), providers.Query{Tick: time.Unix(1000, 0), Seq: seq})
}

func TestAJobPerMeasurement(t *testing.T) {
	b := newBed(t)
	s := b.source(t, jobMetric())

	resp, err := fetch(t, s, 0)
	require.NoError(t, err)
	require.NotNil(t, resp.Verdict)
	assert.Equal(t, v1alpha1.AnalysisPhaseRunning, resp.Verdict.Phase)
	assert.Equal(t, 3*time.Second, resp.Verdict.RetryAfter)

	name := s.jobName(0)
	j := b.job(t, name)
	assert.Equal(t, map[string]string{"team": "checkout", RunUIDLabel: string(run.UID)}, j.Labels)
	assert.Equal(t, map[string]string{"purpose": "smoke", MetricAnnotation: "smoke", SeqAnnotation: "0"}, j.Annotations)
	require.Len(t, j.OwnerReferences, 1)
	owner := j.OwnerReferences[0]
	assert.Equal(t, []string{"promgate.io/v1alpha1", "AnalysisRun", run.Name, string(run.UID)}, []string{owner.APIVersion, owner.Kind, owner.Name, string(owner.UID)})
	assert.True(t, *owner.Controller)
	assert.Equal(t, "curlimages/curl:8.10.1", j.Spec.Template.Spec.Containers[0].Image)

	// A restarted controller asks for the same measurement: it finds the Job.
	again := b.source(t, jobMetric())
	resp, err = fetch(t, again, 0)
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.AnalysisPhaseRunning, resp.Verdict.Phase)
	var jobs batchv1.JobList
	require.NoError(t, b.c.List(context.Background(), &jobs))
	assert.Len(t, jobs.Items, 1, "no second Job for one measurement")

	_, err = fetch(t, s, 1)
	require.NoError(t, err)
	require.NoError(t, b.c.List(context.Background(), &jobs))
	assert.Len(t, jobs.Items, 2, "the next measurement has its own Job")
	assert.NotEqual(t, s.jobName(0), s.jobName(1))
}

func TestJobOutcomes(t *testing.T) {
	lines := make([]string, 30)
	for i := range lines {
		lines[i] = fmt.Sprintf("check %d ok", i+1)
	}
	for _, tc := range []struct {
		name        string
		condition   batchv1.JobConditionType
		reason, msg string
		want        v1alpha1.AnalysisPhase
		wantMessage []string
	}{
		{"complete", batchv1.JobComplete, "", "", v1alpha1.AnalysisPhaseSuccessful, []string{"completed; last log lines:\ncheck 11 ok\n", "check 30 ok"}},
		{"failed", batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit", v1alpha1.AnalysisPhaseFailed,
			[]string{"failed (BackoffLimitExceeded: Job has reached the specified backoff limit); last log lines:", "check 30 ok"}},
		{"deadline", batchv1.JobFailed, "DeadlineExceeded", "Job was active longer than specified deadline", v1alpha1.AnalysisPhaseFailed, []string{"(DeadlineExceeded: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBed(t)
			b.logs["smoke"] = strings.Join(lines, "\n") + "\n"
			s := b.source(t, jobMetric())
			_, err := fetch(t, s, 0)
			require.NoError(t, err)
			b.finish(t, b.job(t, s.jobName(0)), tc.condition, tc.reason, tc.msg)

			resp, err := fetch(t, s, 0)
			require.NoError(t, err)
			require.NotNil(t, resp.Verdict)
			assert.Equal(t, tc.want, resp.Verdict.Phase)
			assert.Contains(t, resp.Verdict.Message, "Job "+s.jobName(0)+" ")
			for _, w := range tc.wantMessage {
				assert.Contains(t, resp.Verdict.Message, w)
			}
			assert.NotContains(t, resp.Verdict.Message, "check 10 ok\n", "only the last 20 lines")
		})
	}
}

func TestJobLogsOfEveryContainerBounded(t *testing.T) {
	b := newBed(t)
	p := jobMetric()
	p.Job.Spec.Template.Spec.Containers = append(p.Job.Spec.Template.Spec.Containers, corev1.Container{Name: "report", Image: "busybox:1.37"})
	b.logs["smoke"] = "smoke passed"
	b.logs["report"] = strings.Repeat("x", 3000) + "\n" + strings.Repeat("y", 3000) + "\nsummary: 42 requests"
	s := b.source(t, p)
	_, err := fetch(t, s, 0)
	require.NoError(t, err)
	b.finish(t, b.job(t, s.jobName(0)), batchv1.JobComplete, "", "")
	resp, err := fetch(t, s, 0)
	require.NoError(t, err)
	logs := resp.Verdict.Message[strings.Index(resp.Verdict.Message, "last log lines:\n")+len("last log lines:\n"):]
	assert.LessOrEqual(t, len(logs), MaxLogBytes)
	assert.True(t, strings.HasSuffix(logs, "summary: 42 requests"), logs)
	assert.NotContains(t, logs, "xxx", "whole lines are dropped from the front to fit")
}

func TestJobTimeoutDeletesTheJob(t *testing.T) {
	b := newBed(t)
	p := jobMetric()
	p.Job.Timeout = "1m"
	s := b.source(t, p)
	name := s.jobName(0)
	stale := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: run.Namespace, Labels: map[string]string{RunUIDLabel: string(run.UID)},
		CreationTimestamp: metav1.Time{Time: time.Now().Add(-2 * time.Minute)}}, Spec: p.Job.Spec}
	require.NoError(t, b.c.Create(context.Background(), stale))

	_, err := fetch(t, s, 0)
	require.ErrorContains(t, err, "the Job "+name+" did not finish within the timeout of 1m0s: deleted")
	var j batchv1.Job
	assert.True(t, apierrors.IsNotFound(b.c.Get(context.Background(), types.NamespacedName{Namespace: run.Namespace, Name: name}, &j)))
}

func TestJobOfAnotherRunIsNotTaken(t *testing.T) {
	b := newBed(t)
	s := b.source(t, jobMetric())
	require.NoError(t, b.c.Create(context.Background(), &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: s.jobName(0), Namespace: run.Namespace}}))
	_, err := fetch(t, s, 0)
	assert.ErrorContains(t, err, "exists and was not created for this run")
}

func TestReleaseDeletesTheRunsJobs(t *testing.T) {
	b := newBed(t)
	s := b.source(t, jobMetric())
	for seq := range int32(3) {
		_, err := fetch(t, s, seq)
		require.NoError(t, err)
	}
	other := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "nightly-backup", Namespace: run.Namespace, Labels: map[string]string{"app": "backup"}}}
	require.NoError(t, b.c.Create(context.Background(), other))

	require.NoError(t, b.f.Release(context.Background(), run))
	var jobs batchv1.JobList
	require.NoError(t, b.c.List(context.Background(), &jobs))
	require.Len(t, jobs.Items, 1)
	assert.Equal(t, "nightly-backup", jobs.Items[0].Name, "only the run's Jobs go")
	require.NoError(t, b.f.Release(context.Background(), run), "releasing again finds nothing left")
}

func TestJobNames(t *testing.T) {
	long := &Source{run: providers.Run{Name: strings.Repeat("checkout-", 20) + "x", UID: "u"}, metric: "Smoke_Test.v2"}
	name := long.jobName(12)
	assert.LessOrEqual(t, len(name), 63, "the Job controller puts the name in a pod label")
	assert.Regexp(t, `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, name)
	assert.Equal(t, name, long.jobName(12), "the same measurement, the same name")
	assert.Regexp(t, `-12-[0-9a-f]{8}$`, name)

	short := &Source{run: providers.Run{Name: "ar", UID: "u"}, metric: "Smoke_Test.v2"}
	assert.Regexp(t, `^ar-smoke-test-v2-3-[0-9a-f]{8}$`, short.jobName(3))
	otherRun := &Source{run: providers.Run{Name: "ar", UID: "v"}, metric: "Smoke_Test.v2"}
	assert.NotEqual(t, short.jobName(3), otherRun.jobName(3), "a run recreated with the same name gets new Jobs")
}

func TestBuildChecksTheJob(t *testing.T) {
	f := NewFactory(Options{})
	path := field.NewPath("metrics").Key("smoke").Child("provider")
	problems := func(mut func(*v1alpha1.JobMetric), env providers.Env) []string {
		p := jobMetric()
		mut(p.Job)
		_, errs := f.Build(context.Background(), path, p, env)
		var out []string
		for _, e := range errs {
			out = append(out, e.Error())
		}
		return out
	}
	template := providers.Env{Template: true}
	assert.Empty(t, problems(func(*v1alpha1.JobMetric) {}, template), "a template is checked with no cluster")
	assert.Equal(t, []string{"metrics[smoke].provider.job: a job metric runs a Job in the cluster, and there is none here: apply the template and let a Rollout or an AnalysisRun run it"},
		problems(func(*v1alpha1.JobMetric) {}, providers.Env{}), "the CLI has no cluster")
	assert.Equal(t, []string{
		"metrics[smoke].provider.job.spec.template.spec.containers: a Job needs at least one container",
		"metrics[smoke].provider.job.spec.template.spec.restartPolicy: a Job's pods restart Never or OnFailure; Never is usual for a test",
	}, problems(func(j *v1alpha1.JobMetric) { j.Spec.Template.Spec = corev1.PodSpec{} }, template))
	assert.Equal(t, []string{
		"metrics[smoke].provider.job.metadata.labels[promgate.io/analysisrun-uid]: promgate sets this label",
		"metrics[smoke].provider.job.spec.template.spec.containers[1].name: a container needs a name",
		"metrics[smoke].provider.job.spec.template.spec.containers[1].image: a container needs an image",
		`metrics[smoke].provider.job.spec.template.spec.containers[2].name: another container is named "smoke"`,
		`metrics[smoke].provider.job.spec.template.spec.restartPolicy: "Always": a Job's pods restart Never or OnFailure`,
		"metrics[smoke].provider.job.spec.backoffLimit: -1 is negative",
		`metrics[smoke].provider.job.timeout: invalid duration "soon": time: invalid duration "soon"`,
	}, problems(func(j *v1alpha1.JobMetric) {
		j.Metadata.Labels[RunUIDLabel] = "x"
		j.Spec.Template.Spec.Containers = append(j.Spec.Template.Spec.Containers, corev1.Container{}, corev1.Container{Name: "smoke", Image: "a"})
		j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		j.Spec.BackoffLimit = new(int32(-1))
		j.Timeout = "soon"
	}, template))
	var errs fielderr.List
	_, errs = f.Build(context.Background(), path, &v1alpha1.MetricProvider{Job: &v1alpha1.JobMetric{Metadata: v1alpha1.JobMetadata{Labels: map[string]string{"bad key!": "v"}}, Spec: jobMetric().Job.Spec}}, template)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "metrics[smoke].provider.job.metadata.labels")
}

func TestTail(t *testing.T) {
	assert.Equal(t, "", tail(""))
	assert.Equal(t, "a\nb", tail("a\nb"))
	many := strings.Repeat("line\n", 50) + "last"
	assert.Equal(t, MaxLogLines, strings.Count(tail(many), "\n")+1)
	assert.Equal(t, strings.Repeat("z", MaxLogBytes), tail(strings.Repeat("z", 2*MaxLogBytes)), "one line longer than the bound keeps its end")
}
