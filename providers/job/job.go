// Package job measures a metric by running a Kubernetes Job, as Argo Rollouts' job
// provider does: a Job that completes is a Successful measurement, one that fails a
// Failed one, with the last lines of its log in the message. Typical Jobs are smoke tests
// and load tests.
//
// Each measurement has its own Job, in the run's namespace and owned by the run, named
// from the run, the metric and the measurement's sequence number, which the run's status
// keeps: a restarted controller finds the Job it created instead of starting another.
// A measurement whose Job still runs is asked about again until the Job ends or the
// metric's timeout passes; when the run ends, its Jobs are deleted.
package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers"
)

// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=create;get;list;watch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get

// Name is this kind's field in v1alpha1.MetricProvider and its label in the executor's
// metrics.
const Name = "job"

// What promgate puts on every Job it creates.
const (
	// RunUIDLabel holds the UID of the AnalysisRun the Job measures for: Release finds a
	// run's Jobs by it, and the controller caches only Jobs that have it.
	RunUIDLabel = "promgate.io/analysisrun-uid"
	// MetricAnnotation names the metric the Job measures.
	MetricAnnotation = "promgate.io/metric"
	// SeqAnnotation is the measurement's sequence number within its metric.
	SeqAnnotation = "promgate.io/measurement"
)

// Bounds on the log lines a measurement's message carries.
const (
	MaxLogLines = 20
	MaxLogBytes = 4 << 10
)

// logReadBytes bounds what is read of a container's last lines: the message keeps their
// end, and the server cuts a long output at its start.
const logReadBytes = 64 << 10

// DefaultPoll is how soon a running Job is looked at again when Options leaves it unset.
const DefaultPoll = 2 * time.Second

// apiTimeout bounds the calls to the API server a measurement makes; logTimeout bounds
// reading logs within it, which goes through the node and may not answer at all.
const (
	apiTimeout = 10 * time.Second
	logTimeout = 5 * time.Second
)

// Options configures a Factory.
type Options struct {
	// Client creates, reads and deletes Jobs; reads may come from a cache. Nil where there
	// is no cluster (the CLI): job metrics are then refused.
	Client client.Client
	// Pods lists a Job's pods and reads their logs, straight from the API server.
	Pods corev1client.PodsGetter
	// Poll is how soon a running Job is looked at again; 0 selects DefaultPoll.
	Poll time.Duration
}

// Factory builds the Sources of job metrics.
type Factory struct {
	client client.Client
	pods   corev1client.PodsGetter
	poll   time.Duration
}

// NewFactory returns a Factory.
func NewFactory(opts Options) *Factory {
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	return &Factory{client: opts.Client, pods: opts.Pods, poll: opts.Poll}
}

// Source runs the Jobs of one metric of one run.
type Source struct {
	f       *Factory
	run     providers.Run
	metric  string
	meta    v1alpha1.JobMetadata
	spec    batchv1.JobSpec
	timeout time.Duration
	desc    providers.Description
}

var _ providers.Source = (*Source)(nil)

// Describe says what the source does. Each call is a measurement of its own.
func (s *Source) Describe() providers.Description { return s.desc }

// Fetch creates the measurement's Job if it does not exist yet and reports how it stands:
// Running while it runs, Successful once it completed, Failed once it failed. A Job that
// outlives the metric's timeout is deleted, and the measurement is an error.
func (s *Source) Fetch(ctx context.Context, q providers.Query) (providers.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	name := s.jobName(q.Seq)
	var job batchv1.Job
	err := s.f.client.Get(ctx, types.NamespacedName{Namespace: s.run.Namespace, Name: name}, &job)
	switch {
	case apierrors.IsNotFound(err):
		if err := s.create(ctx, name, q.Seq); err != nil {
			return providers.Response{}, err
		}
		return s.running("Job " + name + " created"), nil
	case err != nil:
		return providers.Response{}, fmt.Errorf("reading Job %s: %w", name, err)
	case job.Labels[RunUIDLabel] != string(s.run.UID):
		return providers.Response{}, fmt.Errorf("a Job named %s exists and was not created for this run", name)
	}
	if c := finished(&job); c != nil {
		return providers.Response{Verdict: s.verdict(ctx, &job, c)}, nil
	}
	if s.timeout > 0 && time.Since(job.CreationTimestamp.Time) > s.timeout {
		if err := deleteJob(ctx, s.f.client, &job); err != nil {
			return providers.Response{}, err
		}
		return providers.Response{}, fmt.Errorf("the Job %s did not finish within the timeout of %s: deleted", name, s.timeout)
	}
	return s.running("Job " + name + " is running"), nil
}

func (s *Source) running(msg string) providers.Response {
	return providers.Response{Verdict: &providers.Verdict{Phase: v1alpha1.AnalysisPhaseRunning, Message: msg, RetryAfter: s.f.poll}}
}

// create starts the Job of measurement seq. One that already exists is the one an
// earlier attempt created, which the cache has not shown yet.
func (s *Source) create(ctx context.Context, name string, seq int32) error {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   s.run.Namespace,
			Labels:      maps.Clone(s.meta.Labels),
			Annotations: maps.Clone(s.meta.Annotations),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(),
				Kind:       "AnalysisRun",
				Name:       s.run.Name,
				UID:        s.run.UID,
				Controller: ptr.To(true),
			}},
		},
		Spec: *s.spec.DeepCopy(),
	}
	if job.Labels == nil {
		job.Labels = map[string]string{}
	}
	if job.Annotations == nil {
		job.Annotations = map[string]string{}
	}
	job.Labels[RunUIDLabel] = string(s.run.UID)
	job.Annotations[MetricAnnotation] = s.metric
	job.Annotations[SeqAnnotation] = strconv.Itoa(int(seq))
	if err := s.f.client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Job %s: %w", name, err)
	}
	return nil
}

// jobName names the Job of measurement seq: readable from the run and metric names, and
// unique by a hash of the run's UID, the metric and seq, within the 63 characters the Job
// controller allows, since it puts the name in a label of the Job's pods.
func (s *Source) jobName(seq int32) string {
	sum := sha256.Sum256([]byte(string(s.run.UID) + "/" + s.metric + "/" + strconv.Itoa(int(seq))))
	suffix := "-" + strconv.Itoa(int(seq)) + "-" + hex.EncodeToString(sum[:4])
	prefix := dnsLabel(s.run.Name + "-" + s.metric)
	if room := 63 - len(suffix); len(prefix) > room {
		prefix = strings.TrimRight(prefix[:room], "-")
	}
	if prefix == "" {
		prefix = "promgate"
	}
	return prefix + suffix
}

// dnsLabel keeps what a DNS label allows, lower case, other characters turned to '-'.
func dnsLabel(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

// finished returns the Job's Complete or Failed condition once it is true.
func finished(job *batchv1.Job) *batchv1.JobCondition {
	for i, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

// verdict judges a finished Job by its condition, with its last log lines.
func (s *Source) verdict(ctx context.Context, job *batchv1.Job, c *batchv1.JobCondition) *providers.Verdict {
	v := &providers.Verdict{Phase: v1alpha1.AnalysisPhaseSuccessful, Message: "Job " + job.Name + " completed"}
	if c.Type == batchv1.JobFailed {
		v.Phase = v1alpha1.AnalysisPhaseFailed
		v.Message = "Job " + job.Name + " failed"
		if why := strings.TrimSpace(c.Reason + ": " + c.Message); why != ":" {
			v.Message += " (" + strings.Trim(why, ": ") + ")"
		}
	}
	logs, err := s.logs(ctx, job)
	switch {
	case err != nil:
		v.Message += "; its logs could not be read: " + err.Error()
	case logs != "":
		v.Message += "; last log lines:\n" + logs
	}
	return v
}

// logs returns the end of the log of the Job's newest pod, every container's, within
// MaxLogLines and MaxLogBytes.
func (s *Source) logs(ctx context.Context, job *batchv1.Job) (string, error) {
	if s.f.pods == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	pods, err := s.f.pods.Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(job.UID)})
	if err != nil {
		return "", fmt.Errorf("listing its pods: %w", err)
	}
	if len(pods.Items) == 0 {
		return "", nil
	}
	pod := slices.MaxFunc(pods.Items, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	var parts []string
	for _, c := range pod.Spec.Containers {
		text, err := s.containerLog(ctx, &pod, c.Name)
		if err != nil {
			return "", err
		}
		if len(pod.Spec.Containers) > 1 && text != "" {
			text = "[" + c.Name + "]\n" + text
		}
		if text != "" {
			parts = append(parts, text)
		}
	}
	return tail(strings.Join(parts, "\n")), nil
}

func (s *Source) containerLog(ctx context.Context, pod *corev1.Pod, container string) (string, error) {
	stream, err := s.f.pods.Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
		Container: container, TailLines: ptr.To[int64](MaxLogLines), LimitBytes: ptr.To[int64](logReadBytes),
	}).Stream(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the log of %s: %w", pod.Name, err)
	}
	defer stream.Close()
	b, err := io.ReadAll(io.LimitReader(stream, logReadBytes))
	if err != nil {
		return "", fmt.Errorf("reading the log of %s: %w", pod.Name, err)
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// tail keeps the last MaxLogLines lines of text and at most MaxLogBytes of them.
func tail(text string) string {
	lines := strings.Split(text, "\n")
	if len(lines) > MaxLogLines {
		lines = lines[len(lines)-MaxLogLines:]
	}
	text = strings.Join(lines, "\n")
	if len(text) > MaxLogBytes {
		text = text[len(text)-MaxLogBytes:]
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[i+1:]
		}
	}
	return text
}

// Release deletes every Job of run, finished or not.
func (f *Factory) Release(ctx context.Context, run providers.Run) error {
	if f.client == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	var jobs batchv1.JobList
	if err := f.client.List(ctx, &jobs, client.InNamespace(run.Namespace), client.MatchingLabels{RunUIDLabel: string(run.UID)}); err != nil {
		return fmt.Errorf("listing the Jobs of AnalysisRun %s: %w", run.Name, err)
	}
	var errs []error
	for i := range jobs.Items {
		if jobs.Items[i].DeletionTimestamp == nil {
			errs = append(errs, deleteJob(ctx, f.client, &jobs.Items[i]))
		}
	}
	return errors.Join(errs...)
}

// deleteJob deletes job and, in the background, its pods.
func deleteJob(ctx context.Context, c client.Client, job *batchv1.Job) error {
	opts := []client.DeleteOption{client.PropagationPolicy(metav1.DeletePropagationBackground)}
	if job.UID != "" {
		// A Job of the same name created since it was read is not this measurement's.
		opts = append(opts, client.Preconditions{UID: &job.UID})
	}
	err := c.Delete(ctx, job, opts...)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Job %s: %w", job.Name, err)
	}
	return nil
}
