package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

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

// Answers is Documents: the JSON value picked, read as numbers when it is numbers.
func (f *Factory) Answers() providers.Answers { return providers.Documents }

// Check reports what admission rejects in p's web field.
func (f *Factory) Check(path *field.Path, p *v1alpha1.MetricProvider) field.ErrorList {
	spec, path := p.Web, path.Child(Name)
	var errs field.ErrorList
	if spec.URL == "" {
		errs = append(errs, field.Required(path.Child("url"), "a URL is required"))
	}
	if spec.Body != "" && spec.JSONBody != nil {
		errs = append(errs, field.Forbidden(path.Child("jsonBody"), "body and jsonBody are mutually exclusive"))
	}
	if b := spec.JSONBody; b != nil && !bytes.HasPrefix(bytes.TrimSpace(b.Raw), []byte("{")) {
		errs = append(errs, field.Invalid(path.Child("jsonBody"), field.OmitValueType{}, "must be an object; send other JSON as body"))
	}
	if spec.Timeout != "" && spec.TimeoutSeconds != 0 {
		errs = append(errs, field.Forbidden(path.Child("timeoutSeconds"), "timeout and timeoutSeconds are mutually exclusive"))
	}
	errs = append(errs, providers.CheckAuth(path.Child("auth"), spec.Auth)...)
	return append(errs, providers.CheckAuthentication(path.Child("authentication"), spec.Authentication)...)
}

// Build resolves p's web field against env: the URL, method, body and JSONPath checked,
// Secrets read.
func (f *Factory) Build(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, env providers.Env) (providers.Source, fielderr.List) {
	spec, path := p.Web, path.Child(Name)
	var errs fielderr.List
	cfg := Config{URL: spec.URL, Method: spec.Method, Body: spec.Body, JSONPath: spec.JSONPath}
	if _, err := parseURL(cfg.URL); err != nil {
		errs.Invalid(path.Child("url"), field.OmitValueType{}, err)
	}
	// The API takes the method as written, as Argo Rollouts does; only Config also takes
	// it in lower case.
	switch spec.Method {
	case "", http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		errs.Add(field.Invalid(path.Child("method"), spec.Method, fmt.Sprintf("%q is not GET, POST or PUT", spec.Method)))
	}
	if spec.JSONBody != nil {
		var compact bytes.Buffer
		switch {
		case spec.Body != "":
			errs.Add(field.Forbidden(path.Child("jsonBody"), "body and jsonBody are mutually exclusive"))
		case json.Compact(&compact, spec.JSONBody.Raw) != nil:
			errs.Add(field.Invalid(path.Child("jsonBody"), field.OmitValueType{}, "is not JSON"))
		default:
			cfg.Body = compact.String()
		}
	}
	if cfg.Body != "" && (spec.Method == "" || spec.Method == http.MethodGet) {
		body := "body"
		if spec.JSONBody != nil {
			body = "jsonBody"
		}
		errs.Add(field.Invalid(path.Child(body), field.OmitValueType{}, "a body is sent only with method POST or PUT"))
	}
	if _, err := parsePath(spec.JSONPath); err != nil {
		errs.Invalid(path.Child("jsonPath"), spec.JSONPath, err)
	}
	switch {
	case spec.Timeout != "" && spec.TimeoutSeconds != 0:
		errs.Add(field.Forbidden(path.Child("timeoutSeconds"), "timeout and timeoutSeconds are mutually exclusive; timeout is preferred"))
	case spec.TimeoutSeconds < 0 || spec.TimeoutSeconds > int64(math.MaxInt64/time.Second):
		errs.Add(field.Invalid(path.Child("timeoutSeconds"), spec.TimeoutSeconds, fmt.Sprintf("%d is not a number of seconds a timeout can be", spec.TimeoutSeconds)))
	case spec.TimeoutSeconds > 0:
		cfg.Timeout = time.Duration(spec.TimeoutSeconds) * time.Second
	default:
		cfg.Timeout = providers.Duration(path.Child("timeout"), spec.Timeout, &errs)
	}
	if a := spec.Authentication; a != nil && a.SigV4 != nil {
		errs.Add(field.Forbidden(path.Child("authentication", "sigv4"), "sigv4 signs requests to Amazon Managed Service for Prometheus: use it with the prometheus provider"))
	}
	cfg.Headers = providers.Headers(spec.Headers)
	cfg.HTTP, _ = env.HTTP(ctx, path, providers.HTTPSpec{Auth: spec.Auth, Authentication: spec.Authentication, Insecure: spec.Insecure}, &errs)
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
