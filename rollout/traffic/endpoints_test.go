package traffic

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestSliceEndpointsCountsWhatAProxyWouldReach(t *testing.T) {
	pod := func(name, rev string, labels ...string) *corev1.Pod {
		l := map[string]string{"app": "web", podTemplateHash: rev}
		for i := 0; i+1 < len(labels); i += 2 {
			l[labels[i]] = labels[i+1]
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}}
	}
	ep := func(pod string, ready *bool) discoveryv1.Endpoint {
		e := discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
		if pod != "" {
			e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: pod}
		}
		return e
	}
	slice := func(name, svc string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps,
		}
	}
	c, _ := newClient(t, nil,
		pod("a", canaryRev), pod("b", canaryRev), pod("c", stableRev), pod("other-app", canaryRev, "app", "api"),
		// Ready unset counts as ready, as the API tells consumers; a not-ready endpoint
		// (terminating, failing its probe) receives nothing and counts for nothing.
		slice("one-1", "one", ep("a", nil), ep("b", ptr.To(false))),
		slice("mixed-1", "mixed", ep("a", ptr.To(true))),
		slice("mixed-2", "mixed", ep("c", ptr.To(true))),
		slice("manual-1", "manual", ep("a", ptr.To(true)), ep("", ptr.To(true))),
		slice("foreign-1", "foreign", ep("other-app", ptr.To(true))),
		slice("down-1", "down", ep("a", ptr.To(false)), ep("b", ptr.To(false))),
	)
	e := SliceEndpoints{Reader: c}
	sel := map[string]string{"app": "web", podTemplateHash: canaryRev}
	only := func(svc string) error {
		return e.Only(context.Background(), client.ObjectKey{Namespace: ns, Name: svc}, sel, canaryRev)
	}
	require.NoError(t, only("one"))
	for svc, want := range map[string]NotReadyError{
		"mixed":   {Ready: 1, Others: 1},
		"manual":  {Ready: 1, Others: 1},
		"foreign": {Others: 1},
		"down":    {},
		"none":    {},
	} {
		var nr *NotReadyError
		require.ErrorAs(t, only(svc), &nr, svc)
		want.Service, want.Revision = svc, canaryRev
		assert.Equal(t, want, *nr, svc)
	}

	// A subset of a Service's endpoints needs only some of them to be the revision's.
	serves := func(svc string) error {
		return e.Serves(context.Background(), client.ObjectKey{Namespace: ns, Name: svc}, sel, canaryRev)
	}
	for _, svc := range []string{"one", "mixed", "manual"} {
		assert.NoError(t, serves(svc), svc)
	}
	for _, svc := range []string{"foreign", "down", "none"} {
		var nr *NotReadyError
		assert.ErrorAs(t, serves(svc), &nr, svc)
	}
}
