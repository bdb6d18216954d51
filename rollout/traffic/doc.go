// Package traffic moves a release's requests between the stable and the canary revision
// (DESIGN.md section 3): Service selectors pinned by pod-template-hash with a generated
// "<service>-canary" copy, an ingress-nginx canary Ingress, Gateway API HTTPRoute
// backend weights and header rules, or an Istio VirtualService's route weights and
// header routes (to the two Services, or to DestinationRule subsets whose labels are
// pinned to the revisions). Every Router works from the cluster alone: the user's
// originals are saved in annotations on the objects before their first change and restored
// exactly, so a controller restart between any two calls changes nothing, and writes are
// ordered so that no request ever finds a Service without pods.
package traffic
