// Package rollout is the Rollout controller: it releases a new pod template of an
// unchanged Deployment step by step, with the Deployment controller itself running the
// new pods beside the old ones (surge, nothing ever becomes available, so nothing old is
// scaled down), traffic moved by the routers of package traffic, and AnalysisRuns whose
// verdicts advance, pause or abort the release.
//
// Everything a reconcile needs is in the Rollout's spec and status and in the cluster:
// the Deployment's own strategy is kept in an annotation on it, run names are written to
// status before the runs are created, and human commands are status fields.
package rollout
