package providers

import (
	"context"

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
	// Check reports what admission rejects in this kind's field of p, for tools that check
	// a spec with no API server; it resolves nothing. path is p's.
	Check(path *field.Path, p *v1alpha1.MetricProvider) field.ErrorList
	// Build resolves this kind's field of p against env and returns its Source, or every
	// problem found. path is p's.
	Build(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, env Env) (Source, fielderr.List)
}

// SecretFunc returns the value of a key of a Secret in the run's namespace.
type SecretFunc func(ctx context.Context, name, key string) (string, error)

// Env is what a Factory resolves a spec against.
type Env struct {
	// Args are the run's argument values for {{args.name}}.
	Args map[string]string
	// Secret reads the Secrets auth refers to; nil where none can be read, which makes
	// every reference a problem.
	Secret SecretFunc
	// Template marks the check of a template apart from any run: Args hold placeholders,
	// Secrets are not read (a placeholder stands in, and TLS material, which must parse,
	// is left out), and what the controller supplies at run time, such as a default
	// Prometheus address, may be missing.
	Template bool
}
