package web

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/providers"
)

var _ providers.Factory = (*Factory)(nil)

// Name is the kind's field in v1alpha1.MetricProvider.
func (f *Factory) Name() string { return Name }

// Configured reports whether p sets the web field.
func (f *Factory) Configured(p *v1alpha1.MetricProvider) bool { return p.Web != nil }

// Check reports what admission rejects in p's web field.
func (f *Factory) Check(path *field.Path, p *v1alpha1.MetricProvider) field.ErrorList {
	return providers.CheckAuth(path.Child(Name, "auth"), p.Web.Auth)
}

// Build resolves p's web field against env: args rendered into the URL, body and headers,
// the method and JSONPath checked, Secrets read.
func (f *Factory) Build(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, env providers.Env) (providers.Source, fielderr.List) {
	spec, path := p.Web, path.Child(Name)
	var errs fielderr.List
	cfg := Config{Method: spec.Method, JSONPath: spec.JSONPath}
	var ok bool
	if cfg.URL, ok = env.Render(path.Child("url"), spec.URL, &errs); ok {
		if _, err := parseURL(cfg.URL); err != nil {
			errs.Invalid(path.Child("url"), field.OmitValueType{}, err)
		}
	}
	cfg.Body, _ = env.Render(path.Child("body"), spec.Body, &errs)
	// The API takes the method as written; only Config also takes it in lower case.
	switch spec.Method {
	case "", "GET", "POST":
	default:
		errs.Add(field.Invalid(path.Child("method"), spec.Method, fmt.Sprintf("%q is not GET or POST", spec.Method)))
	}
	if _, err := parsePath(spec.JSONPath); err != nil {
		errs.Invalid(path.Child("jsonPath"), spec.JSONPath, err)
	}
	cfg.Timeout = providers.Duration(path.Child("timeout"), spec.Timeout, &errs)
	cfg.Headers = env.Headers(path.Child("headers"), spec.Headers, &errs)
	cfg.HTTP = env.HTTPConfig(ctx, path.Child("auth"), spec.Auth, &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	src, err := f.New(cfg)
	if err != nil {
		errs.Invalid(path, field.OmitValueType{}, err)
		return nil, errs
	}
	return src, nil
}
