package rollout

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// staleError says the cache served an older Rollout than the API server holds. A
// reconcile that decided from it writes nothing: the newer Rollout's watch event brings
// the reconcile back with the state the last one left.
type staleError struct {
	key             client.ObjectKey
	cached, current string
}

func (e *staleError) Error() string {
	return fmt.Sprintf("Rollout %s in the cache is at resourceVersion %s, the API server's at %s", e.key, e.cached, e.current)
}

// fencedClient is the client a reconcile writes other objects with. Before its first
// write it reads the Rollout's resourceVersion from the API server and refuses every
// write when the Rollout the reconcile decides from is older: a decision made from a
// cached Rollout one transition behind (a completed release still at its last
// StepUpgrade, an aborted one still routing) would otherwise hold a released Deployment
// again or give traffic back to a version that lost it. One metadata read per reconcile
// that writes; reconciles that only look cost nothing.
type fencedClient struct {
	client.Client
	reader client.Reader
	ro     *v1alpha1.Rollout
	fresh  bool
}

func newFencedClient(c client.Client, reader client.Reader, ro *v1alpha1.Rollout) *fencedClient {
	return &fencedClient{Client: c, reader: reader, ro: ro}
}

// fence returns a *staleError unless the Rollout is the API server's current one.
func (c *fencedClient) fence(ctx context.Context) error {
	if c.fresh {
		return nil
	}
	var m metav1.PartialObjectMetadata
	m.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Rollout"))
	key := client.ObjectKeyFromObject(c.ro)
	if err := c.reader.Get(ctx, key, &m); err != nil {
		return fmt.Errorf("reading Rollout %s before writing: %w", key, err)
	}
	if m.ResourceVersion != c.ro.ResourceVersion {
		return &staleError{key: key, cached: c.ro.ResourceVersion, current: m.ResourceVersion}
	}
	c.fresh = true
	return nil
}

func (c *fencedClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.fence(ctx); err != nil {
		return err
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c *fencedClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if err := c.fence(ctx); err != nil {
		return err
	}
	return c.Client.Update(ctx, obj, opts...)
}

func (c *fencedClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.fence(ctx); err != nil {
		return err
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *fencedClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if err := c.fence(ctx); err != nil {
		return err
	}
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *fencedClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	if err := c.fence(ctx); err != nil {
		return err
	}
	return c.Client.DeleteAllOf(ctx, obj, opts...)
}

func (c *fencedClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if err := c.fence(ctx); err != nil {
		return err
	}
	return c.Client.Apply(ctx, obj, opts...)
}
