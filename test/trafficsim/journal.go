package trafficsim

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Journal records every write to the objects the routing reads in one namespace, and to
// any other kinds asked for (a Rollout, say), as the API server's watches deliver them.
// Replay then computes the routing after each single write in the order the API server
// made them, as a data plane that followed every change at once would have routed: a
// moment where a route gives weight to a Service whose EndpointSlices hold no ready
// endpoint, or sends requests back to a version after its release completed, shows in
// the replay however short it was, where a simulator reading every tick may miss it.
//
// Writes are ordered by resourceVersion. Kubernetes calls resourceVersions opaque; the
// test bed's etcd hands them out from its one global revision counter, so on the bed
// they order writes across kinds.
type Journal struct {
	mu     sync.Mutex
	writes []Write
	errs   []error
}

// Write is one version of one object as a watch delivered it; Object is nil for a delete.
type Write struct {
	Kind, Name      string
	ResourceVersion int64
	Object          client.Object
	// Seen is when the journal received it.
	Seen time.Time
	// Baseline says the write came from the first list: the state before the journal.
	Baseline bool
}

// journalKinds are the lists the routing reads.
func journalKinds() []client.ObjectList {
	return []client.ObjectList{
		&corev1.ServiceList{}, &discoveryv1.EndpointSliceList{}, &corev1.PodList{},
		&networkingv1.IngressList{}, &gatewayv1.HTTPRouteList{},
	}
}

// StartJournal lists and watches the routing's kinds and extra in namespace until ctx
// ends. c's scheme must know every kind.
func StartJournal(ctx context.Context, c client.WithWatch, namespace string, extra ...client.ObjectList) (*Journal, error) {
	j := &Journal{}
	for _, list := range append(journalKinds(), extra...) {
		rv, err := j.list(ctx, c, namespace, list)
		if err != nil {
			return nil, err
		}
		go j.watch(ctx, c, namespace, list, rv)
	}
	return j, nil
}

func (j *Journal) list(ctx context.Context, c client.WithWatch, namespace string, list client.ObjectList) (string, error) {
	l := list.DeepCopyObject().(client.ObjectList)
	if err := c.List(ctx, l, client.InNamespace(namespace)); err != nil {
		return "", fmt.Errorf("trafficsim: journal: listing %T: %w", l, err)
	}
	objs, err := metaItems(l)
	if err != nil {
		return "", err
	}
	for _, o := range objs {
		j.record(o, false, true)
	}
	return l.GetResourceVersion(), nil
}

// watch follows one kind from rv, watching again from the last version seen when the
// server closes the watch.
func (j *Journal) watch(ctx context.Context, c client.WithWatch, namespace string, list client.ObjectList, rv string) {
	logger := log.FromContext(ctx).WithName("trafficsim-journal")
	for ctx.Err() == nil {
		l := list.DeepCopyObject().(client.ObjectList)
		w, err := c.Watch(ctx, l, client.InNamespace(namespace), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			logger.Info("watch failed; trying again", "list", fmt.Sprintf("%T", l), "error", err.Error())
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				if o, ok := ev.Object.(client.Object); ok {
					j.record(o, ev.Type == watch.Deleted, false)
					rv = o.GetResourceVersion()
				}
			case watch.Bookmark:
				if o, ok := ev.Object.(client.Object); ok {
					rv = o.GetResourceVersion()
				}
			case watch.Error:
				j.mu.Lock()
				j.errs = append(j.errs, fmt.Errorf("trafficsim: journal: watch of %T: %v", l, ev.Object))
				j.mu.Unlock()
				// The gap is recorded; a fresh list lets the journal go on rather than
				// asking again for a version the server no longer has.
				if fresh, err := j.list(ctx, c, namespace, list); err == nil {
					rv = fresh
				}
			}
		}
		w.Stop()
	}
}

func (j *Journal) record(o client.Object, deleted, baseline bool) {
	rv, err := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		j.errs = append(j.errs, fmt.Errorf("trafficsim: journal: %s %s: resourceVersion %q is not a revision number", kindOf(o), o.GetName(), o.GetResourceVersion()))
		return
	}
	w := Write{Kind: kindOf(o), Name: o.GetName(), ResourceVersion: rv, Object: o.DeepCopyObject().(client.Object), Seen: time.Now(), Baseline: baseline}
	if deleted {
		w.Object = nil
	}
	j.writes = append(j.writes, w)
}

// Err reports what the journal could not record; a replay with gaps proves nothing.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.errs) == 0 {
		return nil
	}
	return j.errs[0]
}

// Replay computes the routing of entries after every write recorded so far, in the
// API server's order, and hands each write and the routing after it to fn. The first
// lists are applied as one state before any write is handed on, and a version seen twice
// (by a list and a watch) is replayed once.
func (j *Journal) Replay(entries []Entry, fn func(w Write, snap Snapshot)) {
	j.mu.Lock()
	writes := append([]Write(nil), j.writes...)
	j.mu.Unlock()
	sort.SliceStable(writes, func(a, b int) bool {
		if writes[a].Baseline != writes[b].Baseline {
			return writes[a].Baseline
		}
		return writes[a].ResourceVersion < writes[b].ResourceVersion
	})
	type key struct{ kind, name string }
	state := map[key]client.Object{}
	done := map[key]int64{}
	for _, w := range writes {
		k := key{w.Kind, w.Name}
		if last, ok := done[k]; ok && last >= w.ResourceVersion {
			continue
		}
		done[k] = w.ResourceVersion
		if w.Object == nil {
			delete(state, k)
		} else {
			state[k] = w.Object
		}
		if w.Baseline {
			continue
		}
		var objs Objects
		for _, o := range state {
			switch o := o.(type) {
			case *corev1.Service:
				objs.Services = append(objs.Services, *o)
			case *discoveryv1.EndpointSlice:
				objs.EndpointSlices = append(objs.EndpointSlices, *o)
			case *corev1.Pod:
				objs.Pods = append(objs.Pods, *o)
			case *networkingv1.Ingress:
				objs.Ingresses = append(objs.Ingresses, *o)
			case *gatewayv1.HTTPRoute:
				objs.HTTPRoutes = append(objs.HTTPRoutes, *o)
			}
		}
		fn(w, Route(objs, entries))
	}
}

// kindOf names an object's kind by its Go type, as typed watches leave TypeMeta empty.
func kindOf(o client.Object) string {
	return fmt.Sprintf("%T", o)[1:]
}

// metaItems are the items of a typed list as objects.
func metaItems(l client.ObjectList) ([]client.Object, error) {
	items, err := apimeta.ExtractList(l)
	if err != nil {
		return nil, fmt.Errorf("trafficsim: journal: reading %T: %w", l, err)
	}
	out := make([]client.Object, 0, len(items))
	for _, it := range items {
		o, ok := it.(client.Object)
		if !ok {
			return nil, fmt.Errorf("trafficsim: journal: %T holds a %T", l, it)
		}
		out = append(out, o)
	}
	return out, nil
}
