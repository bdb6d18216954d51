// Package unsupported is the Argo Rollouts metric providers promgate does not implement:
// a template that uses one is accepted by the API server, and the template's Valid
// condition, the run and lint say in one line what to use instead, rather than an
// unknown field.
package unsupported

import (
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/providers"
)

// kinds are the providers of Argo Rollouts that promgate has no counterpart for, with
// what does the same job here.
var kinds = []struct {
	name    string
	field   func(*v1alpha1.MetricProvider) *apiextensionsv1.JSON
	instead string
}{
	{"datadog", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.Datadog },
		"query Datadog's API with web (keys in headers, from a Secret through args), or send the metric to a Prometheus-compatible store and use prometheus"},
	{"newRelic", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.NewRelic },
		"use prometheus with New Relic's PromQL-compatible endpoint, or web with NerdGraph"},
	{"wavefront", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.Wavefront },
		"query Wavefront's API with web, or send the metric to a Prometheus-compatible store and use prometheus"},
	{"cloudWatch", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.CloudWatch },
		"use prometheus with Amazon Managed Service for Prometheus (authentication.sigv4), or export the CloudWatch metrics to a Prometheus-compatible store"},
	{"graphite", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.Graphite },
		"query Graphite's render API (format=json) with web, or send the metric to a Prometheus-compatible store and use prometheus"},
	{"influxdb", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.Influxdb },
		"query InfluxDB's HTTP API with web, or send the metric to a Prometheus-compatible store and use prometheus"},
	{"skywalking", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.SkyWalking },
		"use prometheus with SkyWalking's PromQL endpoint, or web with its GraphQL API"},
	{"kayenta", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.Kayenta },
		"use the judge provider, promgate's Kayenta-style canary judge, or a job that runs your Kayenta client"},
	{"plugin", func(p *v1alpha1.MetricProvider) *apiextensionsv1.JSON { return p.Plugin },
		"metric plugins are not loaded: use prometheus, web, job or the judge provider"},
}

// Factories returns a Factory for each provider promgate does not implement; each
// configured one is a problem, whatever it holds.
func Factories() []providers.Factory {
	out := make([]providers.Factory, len(kinds))
	for i := range kinds {
		out[i] = &factory{kind: i}
	}
	return out
}

type factory struct{ kind int }

// Is reports whether f is one of the factories Factories returns.
func Is(f providers.Factory) bool {
	_, ok := f.(*factory)
	return ok
}

var _ providers.Factory = (*factory)(nil)

// Name is the Argo Rollouts field.
func (f *factory) Name() string { return kinds[f.kind].name }

// Configured reports whether p sets the field.
func (f *factory) Configured(p *v1alpha1.MetricProvider) bool { return kinds[f.kind].field(p) != nil }

// Answers is never asked for: nothing is built.
func (f *factory) Answers() providers.Answers { return providers.Numbers }

// Check reports that the provider is not supported and what to use instead.
func (f *factory) Check(path *field.Path, _ *v1alpha1.MetricProvider) field.ErrorList {
	k := kinds[f.kind]
	return field.ErrorList{field.Forbidden(path.Child(k.name), k.name+" is an Argo Rollouts provider promgate does not implement; "+k.instead)}
}

// Build fails as Check does.
func (f *factory) Build(_ context.Context, path *field.Path, p *v1alpha1.MetricProvider, _ providers.Env) (providers.Source, fielderr.List) {
	var errs fielderr.List
	errs.Add(f.Check(path, p)...)
	return nil, errs
}
