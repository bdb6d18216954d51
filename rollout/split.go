package rollout

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// A step's split of pods between the revisions, and how it holds on the Deployment
// controller (k8s.io/kubernetes pkg/controller/deployment, sync.go and rolling.go of 1.36).
// Under the hold (maxUnavailable 0, minReadySeconds 2^31-2) no pod created after the hold
// ever becomes available, and for a Deployment of N replicas with maxSurge S and all the
// pods of its ReplicaSets counted as A, the Deployment controller:
//
//  1. scales the new ReplicaSet up to min(N, new + N + S - A) and never past N;
//  2. scales old ReplicaSets down by at most A - N - unavailable new pods, their
//     unavailable pods first, oldest ReplicaSet first;
//  3. when N itself changes (a scaling event: kubectl scale, an HPA), spreads
//     N + S - A over every ReplicaSet with pods in proportion to its size, new and old
//     alike: 5 → 8 replicas at step 1 (old 5, new 1, S 1) gives old 7 and new 2.
//
// The split of a step asking for want new pods is: stable = N, canary = max(want, 1)
// (0 when N is 0: with maxUnavailable 0 the API requires maxSurge >= 1, and the
// Deployment controller then always makes one new pod), S = max(canary, 1), every other
// old ReplicaSet 0. That is a fixed point of all three rules: A = N + canary = N + S,
// so rule 1 adds nothing; A - N - canary = 0, so rule 2 removes nothing. After a scaling
// event (rule 3), or a jump back to a smaller step, the controller writes the
// ReplicaSets back to it: the stable one to N first (so the Deployment controller never
// sees room to grow the new one past the step), then the new one down to canary if it is
// over; below canary, rule 1 grows it.
type split struct {
	// want is the step's new pods: its replicas, a count or a percentage of N rounded up.
	want int32
	// stable, canary and surge are the stable ReplicaSet's replicas, the new one's and
	// the Deployment's maxSurge.
	stable, canary, surge int32
}

func stepSplit(n int32, replicas *intstr.IntOrString) (split, error) {
	want, err := desiredReplicas(replicas, n)
	if err != nil {
		return split{}, err
	}
	canary := want
	if n > 0 {
		canary = max(want, 1)
	}
	return split{want: want, stable: n, canary: canary, surge: max(canary, 1)}, nil
}

// abortedSplit is the split an aborted release holds with its Deployment paused: the
// stable version at N and the new one at what it runs (0 with abortScaleDown). maxSurge
// follows the new version's size: at every pass over a paused Deployment (not only at
// scaling events), the Deployment controller spreads N + maxSurge over its ReplicaSets in
// proportion (rule 3), so any other surge would shrink or grow the stable version.
func abortedSplit(n, canary int32, scaleDown bool) split {
	if scaleDown {
		canary = 0
	}
	return split{want: canary, stable: n, canary: canary, surge: max(canary, 1)}
}

// scaleTo is a ReplicaSet write that puts a revision at its share of the split.
type scaleTo struct {
	rs       *appsv1.ReplicaSet
	replicas int32
}

// corrections are the ReplicaSet writes that bring revs to sp, stable first. The new
// ReplicaSet is the one running the Deployment's template (revs.current), whatever status
// says; until it exists no other old ReplicaSet is touched either.
func (sp split) corrections(revs revisions, stable string) []scaleTo {
	var first, rest []scaleTo
	for hash, rs := range revs.byHash {
		cur := ptr.Deref(rs.Spec.Replicas, 0)
		switch {
		case hash == stable:
			if cur != sp.stable {
				first = append(first, scaleTo{rs, sp.stable})
			}
		case revs.current == nil:
		case rs == revs.current:
			if cur > sp.canary {
				rest = append(rest, scaleTo{rs, sp.canary})
			}
		case cur > 0:
			rest = append(rest, scaleTo{rs, 0})
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].rs.Name < rest[j].rs.Name })
	return append(first, rest...)
}
