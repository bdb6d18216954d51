package providers

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
)

// Factory is one provider kind: it owns its field of v1alpha1.MetricProvider, from what
// admission requires of it to the Source it becomes. A new provider is a package with a
// Factory plus one line where the engine lists them.
type Factory interface {
	// Name is the kind's field in v1alpha1.MetricProvider, e.g. "prometheus".
	Name() string
	// Configured reports whether p sets this kind's field.
	Configured(p *v1alpha1.MetricProvider) bool
	// Answers says what the kind's measurements give the engine to judge, so that
	// conditions are checked against the results they will see.
	Answers() Answers
	// Check reports what admission rejects in this kind's field of p, for tools that check
	// a spec with no API server; it resolves nothing. path is p's.
	Check(path *field.Path, p *v1alpha1.MetricProvider) field.ErrorList
	// Build resolves this kind's field of p against env and returns its Source, or every
	// problem found. path is p's; args are already rendered into p.
	Build(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, env Env) (Source, fielderr.List)
}

// Releaser is a Factory whose measurements leave objects behind, such as the job kind's
// Jobs: Release deletes those of a run that has ended. It is called again for a run
// whose release failed, so it must find what is left on its own.
type Releaser interface {
	Release(ctx context.Context, run Run) error
}

// SecretFunc returns the value of a key of a Secret in the run's namespace.
type SecretFunc func(ctx context.Context, name, key string) (string, error)

// Run identifies the AnalysisRun a spec is resolved for, for kinds that create objects
// it owns.
type Run struct {
	Namespace string
	Name      string
	UID       types.UID
}

// Env is what a Factory resolves a spec against.
type Env struct {
	// Secret reads the Secrets auth refers to; nil where none can be read, which makes
	// every reference a problem.
	Secret SecretFunc
	// Mask registers a value no message may show, such as a password written in the
	// spec; nil where nothing is shown.
	Mask func(value string)
	// Run is the AnalysisRun measured; nil where there is none (the CLI, templates).
	Run *Run
	// Metric is the name of the metric being built.
	Metric string
	// Template marks the check of a template apart from any run: args hold placeholders,
	// Secrets are not read (a placeholder stands in, and TLS material, which must parse,
	// is left out), and what the controller supplies at run time, such as a default
	// Prometheus address or the run, may be missing.
	Template bool
}

// mask registers v with env.Mask, if there is one.
func (env Env) mask(v string) {
	if env.Mask != nil && v != "" {
		env.Mask(v)
	}
}
