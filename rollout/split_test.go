package rollout

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The Deployment controller's annotations on its ReplicaSets.
const (
	desiredAnnotation = "deployment.kubernetes.io/desired-replicas"
	maxAnnotation     = "deployment.kubernetes.io/max-replicas"
)

// deploymentModel is the replica arithmetic of the Deployment controller
// (k8s.io/kubernetes pkg/controller/deployment of 1.36: sync.go's scale, rolling.go's
// reconcileNewReplicaSet and reconcileOldReplicaSets) for a Deployment under the hold:
// maxUnavailable 0, and no pod created under the hold ever becomes available. The
// ReplicaSets are oldest first; the last runs the Deployment's template.
type deploymentModel struct {
	n, surge int32
	paused   bool
	rss      []*appsv1.ReplicaSet
}

func newModel(n int32, sizes ...int32) *deploymentModel {
	m := &deploymentModel{n: n, surge: 1}
	for i, size := range sizes {
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("web-rev%d", i), CreationTimestamp: metav1.NewTime(time.Unix(int64(i), 0)),
				Labels: map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: fmt.Sprintf("rev%d", i)},
			},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(size)},
		}
		m.annotate(rs)
		if i == 0 {
			// The stable version's pods were available before the hold, and the Deployment
			// controller last scaled it under the Deployment's own maxSurge of 25%.
			rs.Status.AvailableReplicas = size
			rs.Annotations[maxAnnotation] = strconv.Itoa(int(n + (n+3)/4))
		}
		m.rss = append(m.rss, rs)
	}
	return m
}

func replicas(rs *appsv1.ReplicaSet) int32 { return ptr.Deref(rs.Spec.Replicas, 0) }

func (m *deploymentModel) annotate(rs *appsv1.ReplicaSet) {
	rs.Annotations = map[string]string{desiredAnnotation: strconv.Itoa(int(m.n)), maxAnnotation: strconv.Itoa(int(m.n + m.surge))}
}

// resize is a ReplicaSet write; the ReplicaSet controller deletes unavailable pods first.
func resize(rs *appsv1.ReplicaSet, to int32) {
	rs.Spec.Replicas = ptr.To(to)
	rs.Status.AvailableReplicas = min(rs.Status.AvailableReplicas, to)
}

// scaleRS is the Deployment controller's scaleReplicaSet: size and annotations.
func (m *deploymentModel) scaleRS(rs *appsv1.ReplicaSet, to int32) {
	resize(rs, to)
	m.annotate(rs)
}

func (m *deploymentModel) total() (all int32) {
	for _, rs := range m.rss {
		all += replicas(rs)
	}
	return all
}

// sync is one pass of syncDeployment; it reports whether it wrote anything.
func (m *deploymentModel) sync() bool {
	before := m.sizes()
	scaling := false
	for _, rs := range m.rss {
		if d, _ := strconv.Atoi(rs.Annotations[desiredAnnotation]); replicas(rs) > 0 && int32(d) != m.n {
			scaling = true
		}
	}
	switch {
	case m.paused || scaling:
		m.scale()
	default:
		m.rolling()
	}
	return fmt.Sprint(before) != fmt.Sprint(m.sizes())
}

func (m *deploymentModel) scale() {
	var active []*appsv1.ReplicaSet
	for _, rs := range m.rss {
		if replicas(rs) > 0 {
			active = append(active, rs)
		}
	}
	if len(active) <= 1 {
		target := m.rss[len(m.rss)-1]
		if len(active) == 1 {
			target = active[0]
		}
		if replicas(target) != m.n {
			m.scaleRS(target, m.n)
		}
		return
	}
	allowed := int32(0)
	if m.n > 0 {
		allowed = m.n + m.surge
	}
	var all int32
	for _, rs := range active {
		all += replicas(rs)
	}
	toAdd := allowed - all
	newer := func(i, j int) bool { return active[i].CreationTimestamp.After(active[j].CreationTimestamp.Time) }
	sort.SliceStable(active, func(i, j int) bool {
		if replicas(active[i]) != replicas(active[j]) {
			return replicas(active[i]) > replicas(active[j])
		}
		if toAdd > 0 {
			return newer(i, j)
		}
		return newer(j, i)
	})
	added := int32(0)
	sizes := map[string]int32{}
	for _, rs := range active {
		prop := int32(0)
		if toAdd != 0 && toAdd != added {
			var frac int32
			if m.n == 0 {
				frac = -replicas(rs)
			} else {
				before, _ := strconv.Atoi(rs.Annotations[maxAnnotation])
				frac = int32(math.Round(float64(replicas(rs)*(m.n+m.surge))/float64(before))) - replicas(rs)
			}
			if toAdd > 0 {
				prop = min(frac, toAdd-added)
			} else {
				prop = max(frac, toAdd-added)
			}
		}
		sizes[rs.Name] = replicas(rs) + prop
		added += prop
	}
	for i, rs := range active {
		if i == 0 && toAdd != 0 {
			sizes[rs.Name] = max(sizes[rs.Name]+toAdd-added, 0)
		}
		m.scaleRS(rs, sizes[rs.Name])
	}
}

func (m *deploymentModel) rolling() {
	nw := m.rss[len(m.rss)-1]
	switch {
	case replicas(nw) > m.n:
		m.scaleRS(nw, m.n)
		return
	case replicas(nw) < m.n:
		if all, maxTotal := m.total(), m.n+m.surge; all < maxTotal {
			m.scaleRS(nw, replicas(nw)+min(maxTotal-all, m.n-replicas(nw)))
			return
		}
	}
	old := m.rss[:len(m.rss)-1]
	maxDown := m.total() - m.n - (replicas(nw) - nw.Status.AvailableReplicas)
	if maxDown <= 0 {
		return
	}
	cleaned := int32(0)
	for _, rs := range old {
		if cleaned >= maxDown {
			break
		}
		unhealthy := replicas(rs) - rs.Status.AvailableReplicas
		if replicas(rs) == 0 || unhealthy == 0 {
			continue
		}
		c := min(maxDown-cleaned, unhealthy)
		m.scaleRS(rs, replicas(rs)-c)
		cleaned += c
	}
	var available int32
	for _, rs := range m.rss {
		available += rs.Status.AvailableReplicas
	}
	if available <= m.n {
		return
	}
	down, done := available-m.n, int32(0)
	for _, rs := range old {
		if done >= down {
			break
		}
		c := min(replicas(rs), down-done)
		m.scaleRS(rs, replicas(rs)-c)
		done += c
	}
}

func (m *deploymentModel) sizes() []int32 {
	out := make([]int32, len(m.rss))
	for i, rs := range m.rss {
		out[i] = replicas(rs)
	}
	return out
}

func (m *deploymentModel) revisions() revisions {
	revs := revisions{byHash: map[string]*appsv1.ReplicaSet{}, current: m.rss[len(m.rss)-1]}
	for _, rs := range m.rss {
		revs.byHash[hashOf(rs)] = rs
	}
	return revs
}

// settle runs the Deployment controller to rest and, when splitFor is set, the
// controller's surge and corrections for the split it gives after each of its passes,
// until neither writes; it fails the test if they fight.
func (m *deploymentModel) settle(t *testing.T, splitFor func(n int32, revs revisions) split) {
	t.Helper()
	for round := range 50 {
		moved := false
		for m.sync() {
			moved = true
		}
		if splitFor == nil {
			return
		}
		sp := splitFor(m.n, m.revisions())
		for _, fix := range sp.corrections(m.revisions(), "rev0") {
			resize(fix.rs, fix.replicas)
			moved = true
		}
		sp = splitFor(m.n, m.revisions())
		moved = moved || m.surge != sp.surge
		m.surge = sp.surge
		if !moved {
			return
		}
		require.Less(t, round, 49, "the Deployment controller and the corrections never agree: %v", m.sizes())
	}
}

// atStep is the split of a release at a step of replicas.
func atStep(t *testing.T, replicas *intstr.IntOrString) func(int32, revisions) split {
	return func(n int32, _ revisions) split {
		sp, err := stepSplit(n, replicas)
		require.NoError(t, err)
		return sp
	}
}

// aborted is the split of an aborted release.
func aborted(scaleDown bool) func(int32, revisions) split {
	return func(n int32, revs revisions) split {
		return abortedSplit(n, replicas(revs.current), scaleDown)
	}
}

func TestTheModelScalesAsTheDeploymentControllerDid(t *testing.T) {
	// What issue 9 saw on the bed: paused at step 1 (old 5, new 1, maxSurge 1), scaled to 8.
	m := newModel(5, 5, 1)
	m.settle(t, nil)
	require.Equal(t, []int32{5, 1}, m.sizes(), "the hold holds")
	m.n = 8
	m.settle(t, nil)
	assert.Equal(t, []int32{7, 2}, m.sizes(), "proportional scaling spreads the 3 new replicas over both")
	// Step 2 (50% of 8) with maxSurge alone, as before the fix: 5 new pods, not 4.
	m.surge = 4
	resize(m.rss[1], 4)
	m.settle(t, nil)
	assert.Equal(t, []int32{7, 5}, m.sizes())
}

func TestStepSplitHoldsThroughScalingEvents(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { return ptr.To(intstr.FromString(s)) }
	count := func(n int32) *intstr.IntOrString { return ptr.To(intstr.FromInt32(n)) }
	type move struct {
		scaleTo int32               // the user's or an HPA's new spec.replicas; 0 keeps it
		step    *intstr.IntOrString // the step the release is at afterwards
		want    []int32             // stable, new
	}
	for name, tc := range map[string]struct {
		start []int32 // ReplicaSet sizes, the stable one first and the new one last
		moves []move
	}{
		"canary, scaled up and down at every step": {[]int32{5, 1}, []move{
			{8, count(1), []int32{8, 1}},
			{0, pct("50%"), []int32{8, 4}},
			{4, pct("50%"), []int32{4, 2}},
			{0, pct("100%"), []int32{4, 4}},
			{10, pct("100%"), []int32{10, 10}},
			{3, pct("100%"), []int32{3, 3}},
		}},
		"canary, jump back to a smaller step after scaling": {[]int32{5, 1}, []move{
			{0, pct("100%"), []int32{5, 5}},
			{7, pct("100%"), []int32{7, 7}},
			{0, count(1), []int32{7, 1}},
		}},
		"blue-green": {[]int32{5, 1}, []move{
			{0, pct("100%"), []int32{5, 5}},
			{8, pct("100%"), []int32{8, 8}},
			{2, pct("100%"), []int32{2, 2}},
		}},
		"a step of 0 still runs one new pod": {[]int32{4, 0}, []move{
			{0, count(0), []int32{4, 1}},
			{6, count(0), []int32{6, 1}},
		}},
		"scaled to zero and back": {[]int32{5, 2}, []move{
			{0, count(2), []int32{5, 2}},
			{-1, count(2), []int32{0, 0}},
			{5, count(2), []int32{5, 2}},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			m := newModel(tc.start[0], tc.start...)
			for i, mv := range tc.moves {
				switch {
				case mv.scaleTo > 0:
					m.n = mv.scaleTo
				case mv.scaleTo < 0:
					m.n = 0
				}
				m.settle(t, atStep(t, mv.step))
				assert.Equal(t, mv.want, m.sizes(), "move %d: stable and new pods", i)
				if sp, err := stepSplit(m.n, mv.step); m.n > 0 {
					require.NoError(t, err)
					assert.Equal(t, m.n+sp.surge, m.total(), "move %d: the pods fill the surge exactly, so nothing grows", i)
				}
			}
		})
	}
}

func TestStepSplitRetiresOtherRevisionsAndHoldsAnAbort(t *testing.T) {
	// A release restarted on a third template: the second one's pods go.
	m := newModel(5, 5, 2, 0)
	m.settle(t, atStep(t, ptr.To(intstr.FromInt32(1))))
	assert.Equal(t, []int32{5, 0, 1}, m.sizes())

	// Aborted, the Deployment is paused: the Deployment controller spreads N + maxSurge
	// over the ReplicaSets at every pass, so a scaling event moves pods into the new
	// version; the stable version is brought to the Deployment's size and maxSurge
	// follows the new version, which keeps its pods for diagnosis.
	for _, tc := range []struct {
		scaleDown bool
		n         int32
		want      []int32
	}{{false, 8, []int32{8, 1}}, {false, 3, []int32{3, 1}}, {true, 8, []int32{8, 0}}} {
		m = newModel(5, 5, 1)
		m.paused = true
		m.settle(t, aborted(tc.scaleDown))
		m.n = tc.n
		m.settle(t, aborted(tc.scaleDown))
		assert.Equal(t, tc.want, m.sizes(), "abortScaleDown %v, scaled to %d", tc.scaleDown, tc.n)
	}
}
