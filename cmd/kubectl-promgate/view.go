package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout"
	"github.com/promgate/promgate/rollout/traffic"
)

// ingress-nginx's canary annotations, which the Ingress routing writes on "<name>-canary"
// (https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#canary).
const (
	nginxCanaryWeight  = "nginx.ingress.kubernetes.io/canary-weight"
	nginxCanaryHeader  = "nginx.ingress.kubernetes.io/canary-by-header"
	nginxCanaryValue   = "nginx.ingress.kubernetes.io/canary-by-header-value"
	nginxCanaryPattern = "nginx.ingress.kubernetes.io/canary-by-header-pattern"
)

// view is everything get shows of a Rollout, read at one time.
type view struct {
	ro  *v1alpha1.Rollout
	now time.Time
	// w is the workload; problem says why there is none.
	w       workload
	problem string
	runs    []v1alpha1.AnalysisRun
	routes  []liveRoute
}

// liveRoute is the traffic one routing gives the new version now, as its objects say.
type liveRoute struct {
	// what names the object read, e.g. "HTTPRoute web".
	what   string
	weight int32
	// headers are the request headers sent to the new version whatever the weight.
	headers []string
	// problem says why the split could not be read.
	problem string
}

// readView reads a Rollout's workload, runs and routes. Only the Rollout itself must be
// readable: what else cannot be read is said in the view instead.
func readView(ctx context.Context, c client.Reader, ro *v1alpha1.Rollout, now time.Time) *view {
	v := &view{ro: ro, now: now}
	w, err := loadWorkload(ctx, c, ro)
	if err != nil {
		v.problem = oneLine(err.Error())
	}
	v.w = w
	var runs v1alpha1.AnalysisRunList
	if err := c.List(ctx, &runs, client.InNamespace(ro.Namespace)); err != nil {
		v.problem = joinProblems(v.problem, "listing AnalysisRuns: "+oneLine(err.Error()))
	}
	for _, r := range runs.Items {
		if metav1.IsControlledBy(&r, ro) {
			v.runs = append(v.runs, r)
		}
	}
	slices.SortFunc(v.runs, func(a, b v1alpha1.AnalysisRun) int {
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	if st, _ := ro.Spec.Strategy.Active(); st != nil {
		for _, tr := range st.TrafficRoutings {
			v.routes = append(v.routes, readRoute(ctx, c, ro, tr))
		}
	}
	return v
}

func joinProblems(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// readRoute reads what share of requests a routing sends to the canary Service now.
func readRoute(ctx context.Context, c client.Reader, ro *v1alpha1.Rollout, tr v1alpha1.TrafficRouting) liveRoute {
	key := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: ro.Namespace, Name: name} }
	canarySvc := tr.Service + traffic.CanarySuffix
	switch {
	case tr.Gateway != nil:
		r := liveRoute{what: "HTTPRoute " + tr.Gateway.HTTPRouteName}
		var route gatewayv1.HTTPRoute
		if err := c.Get(ctx, key(tr.Gateway.HTTPRouteName), &route); err != nil {
			r.problem = readProblem(err)
			return r
		}
		weighted := false
		for _, rule := range route.Spec.Rules {
			var stable, canary int32
			for _, ref := range rule.BackendRefs {
				w := int32(1)
				if ref.Weight != nil {
					w = *ref.Weight
				}
				switch string(ref.Name) {
				case tr.Service:
					stable += w
				case canarySvc:
					canary += w
				}
			}
			switch {
			case stable == 0 && canary > 0 && len(rule.Matches) > 0:
				r.headers = append(r.headers, routeHeaders(rule.Matches)...)
			case !weighted && stable+canary > 0:
				r.weight, weighted = canary*100/(stable+canary), true
			}
		}
		return r
	case tr.Ingress != nil:
		r := liveRoute{what: "Ingress " + tr.Ingress.Name}
		var ing networkingv1.Ingress
		err := c.Get(ctx, key(tr.Ingress.Name+traffic.CanarySuffix), &ing)
		if apierrors.IsNotFound(err) {
			return r
		}
		if err != nil {
			r.problem = readProblem(err)
			return r
		}
		if w, err := strconv.Atoi(ing.Annotations[nginxCanaryWeight]); err == nil {
			r.weight = int32(w)
		}
		if h := ing.Annotations[nginxCanaryHeader]; h != "" {
			if p := ing.Annotations[nginxCanaryPattern]; p != "" {
				r.headers = append(r.headers, h+" ~ "+p)
			} else {
				r.headers = append(r.headers, h+": "+ing.Annotations[nginxCanaryValue])
			}
		}
		return r
	}
	r := liveRoute{what: "Service " + tr.Service}
	var svc corev1.Service
	if err := c.Get(ctx, key(tr.Service), &svc); err != nil {
		r.problem = readProblem(err)
		return r
	}
	if rev := ro.Status.CanaryRevision; rev != "" && svc.Spec.Selector["pod-template-hash"] == rev {
		r.weight = 100
	}
	return r
}

func routeHeaders(ms []gatewayv1.HTTPRouteMatch) []string {
	var out []string
	for _, m := range ms {
		var hs []string
		for _, h := range m.Headers {
			op := ": "
			if h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression {
				op = " ~ "
			}
			hs = append(hs, string(h.Name)+op+h.Value)
		}
		if len(hs) > 0 {
			out = append(out, strings.Join(hs, ", "))
		}
	}
	return out
}

func readProblem(err error) string {
	if apierrors.IsNotFound(err) {
		return "not found"
	}
	return oneLine(err.Error())
}

// desiredTraffic is the share the current step asks for the new version, and whether a
// release asks for any.
func desiredTraffic(ro *v1alpha1.Rollout) (int32, bool) {
	st := ro.Status
	steps := stepsOf(ro)
	switch {
	case st.Phase == v1alpha1.RolloutPhaseAborted:
		return 0, true
	case st.Phase == v1alpha1.RolloutPhaseCompleted && st.CanaryRevision != "":
		return 100, true
	case !releasing(ro) || st.CurrentStepIndex < 1 || int(st.CurrentStepIndex) > len(steps):
		return 0, false
	}
	w, err := rollout.TrafficAt(steps, st.CurrentStepIndex)
	return w, err == nil
}

// windowLine describes the release window at now: open until when, or when it opens next,
// in the window's zone.
func windowLine(ro *v1alpha1.Rollout, now time.Time) string {
	spec := ro.Spec.ReleaseWindow
	if spec == nil {
		return ""
	}
	w, err := rollout.ParseWindow(spec)
	if err != nil {
		return "invalid: " + oneLine(err.Error())
	}
	ws := w.At(now)
	zone := w.Location().String()
	at := func(t time.Time) string {
		return fmt.Sprintf("%s (%s), in %s", t.Format("2006-01-02 15:04:05 MST"), zone, age(t.Sub(now)))
	}
	switch {
	case ws.Open && ws.ClosesAt.IsZero():
		return "open"
	case ws.Open:
		return "open, closes " + at(ws.ClosesAt)
	case ws.NextOpen.IsZero():
		return "closed, never opens again"
	}
	return "closed, opens " + at(ws.NextOpen)
}

// alertLine is the alert that aborted the release, or that is about to.
func alertLine(ro *v1alpha1.Rollout) string {
	st := ro.Status
	if a := st.AlertAbort; a != nil {
		return fmt.Sprintf("%s firing (%s), aborting", a.AlertName, a.Source)
	}
	if st.Phase == v1alpha1.RolloutPhaseAborted && st.Report != nil && st.Report.DecidedBy == v1alpha1.DecidedByAlert {
		return strings.TrimPrefix(st.AbortReason, "alert ")
	}
	return ""
}

// invalid is the Valid condition's message when the spec or a reference is unusable.
func invalid(ro *v1alpha1.Rollout) *metav1.Condition {
	c := apimeta.FindStatusCondition(ro.Status.Conditions, rollout.ConditionValid)
	if c == nil || c.Status != metav1.ConditionFalse {
		return nil
	}
	return c
}
