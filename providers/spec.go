package providers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/sigv4"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
)

// placeholderSecret stands in for every Secret value while a template is checked.
const placeholderSecret = "placeholder"

// Headers turns hs into a map; args are already rendered into them.
func Headers(hs []v1alpha1.Header) map[string]string {
	if len(hs) == 0 {
		return nil
	}
	out := make(map[string]string, len(hs))
	for _, h := range hs {
		out[h.Key] = h.Value
	}
	return out
}

// ReadSecret reads the Secret key ref names; path is ref's.
func (env Env) ReadSecret(ctx context.Context, path *field.Path, ref *v1alpha1.SecretKeySelector, errs *fielderr.List) string {
	switch {
	case env.Template:
		return placeholderSecret
	case env.Secret == nil:
		errs.Add(field.Forbidden(path, "secrets cannot be read here"))
		return ""
	}
	v, err := env.Secret(ctx, ref.Name, ref.Key)
	if err != nil {
		errs.Invalid(path, field.OmitValueType{}, fmt.Errorf("reading key %q of Secret %q: %w", ref.Key, ref.Name, err))
		return ""
	}
	return v
}

// HTTPSpec is the part of a provider's spec that says how to reach its endpoint.
type HTTPSpec struct {
	// Auth is promgate's auth, credentials in Secrets.
	Auth *v1alpha1.HTTPAuth
	// Authentication is Argo Rollouts' auth, credentials written in the spec.
	Authentication *v1alpha1.Authentication
	// Insecure skips the server certificate check.
	Insecure bool
}

// HTTP maps spec onto prometheus/common's HTTPClientConfig with its Secrets read, and
// returns the SigV4 signing it asks for, if any. path is the provider's: problems are at
// its auth, authentication and insecure fields. A template is checked without signing:
// checking asks nothing of the endpoint, and the credentials are the controller's.
func (env Env) HTTP(ctx context.Context, path *field.Path, spec HTTPSpec, errs *fielderr.List) (config.HTTPClientConfig, *sigv4.SigV4Config) {
	before := len(*errs)
	cfg := env.httpConfig(ctx, path.Child("auth"), spec.Auth, errs)
	if spec.Insecure {
		cfg.TLSConfig.InsecureSkipVerify = true
	}
	var sig *sigv4.SigV4Config
	if a := spec.Authentication; a != nil {
		apath := path.Child("authentication")
		if cfg.Authorization != nil || cfg.BasicAuth != nil || cfg.OAuth2 != nil {
			if a.OAuth2 != nil || a.BasicAuth != nil || a.SigV4 != nil {
				errs.Add(field.Invalid(apath, field.OmitValueType{}, "credentials are set in auth too; keep one (auth, with Secrets, is preferred)"))
			}
		}
		if o := a.OAuth2; o != nil {
			env.mask(o.ClientSecret)
			cfg.OAuth2 = &config.OAuth2{ClientID: o.ClientID, ClientSecret: config.Secret(o.ClientSecret), TokenURL: o.TokenURL, Scopes: o.Scopes}
		}
		if b := a.BasicAuth; b != nil {
			env.mask(b.Password)
			cfg.BasicAuth = &config.BasicAuth{Username: b.Username, Password: config.Secret(b.Password)}
		}
		if s := a.SigV4; s != nil && !env.Template {
			sig = &sigv4.SigV4Config{Region: s.Region, Profile: s.Profile, RoleARN: s.RoleARN}
		}
	}
	// With a Secret missing the configuration is incomplete, and what Validate said about
	// it would only repeat that.
	if len(*errs) == before {
		if err := cfg.Validate(); err != nil {
			errs.Invalid(path, field.OmitValueType{}, err)
		}
	}
	return cfg, sig
}

// httpConfig maps auth, the field at path, onto prometheus/common's HTTPClientConfig
// with its Secrets read.
func (env Env) httpConfig(ctx context.Context, path *field.Path, auth *v1alpha1.HTTPAuth, errs *fielderr.List) config.HTTPClientConfig {
	cfg := config.DefaultHTTPClientConfig
	if auth == nil {
		return cfg
	}
	if auth.BearerTokenSecret != nil {
		token := env.ReadSecret(ctx, path.Child("bearerTokenSecret"), auth.BearerTokenSecret, errs)
		cfg.Authorization = &config.Authorization{Type: "Bearer", Credentials: config.Secret(token)}
	}
	if b := auth.BasicAuth; b != nil {
		pw := env.ReadSecret(ctx, path.Child("basicAuth", "passwordSecret"), &b.PasswordSecret, errs)
		cfg.BasicAuth = &config.BasicAuth{Username: b.Username, Password: config.Secret(pw)}
	}
	if o := auth.OAuth2; o != nil {
		cs := env.ReadSecret(ctx, path.Child("oauth2", "clientSecret"), &o.ClientSecret, errs)
		cfg.OAuth2 = &config.OAuth2{ClientID: o.ClientID, ClientSecret: config.Secret(cs), TokenURL: o.TokenURL, Scopes: o.Scopes, EndpointParams: o.EndpointParams}
	}
	if t := auth.TLS; t != nil {
		tlsPath := path.Child("tls")
		cfg.TLSConfig = config.TLSConfig{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
		if (t.CertSecret == nil) != (t.KeySecret == nil) {
			errs.Add(field.Invalid(tlsPath, field.OmitValueType{}, "certSecret and keySecret go together"))
		}
		// PEM material must parse, so a template, which has only placeholders for it,
		// is checked without it.
		if !env.Template {
			for _, s := range []struct {
				field string
				ref   *v1alpha1.SecretKeySelector
				dst   func(string)
			}{
				{"caSecret", t.CASecret, func(v string) { cfg.TLSConfig.CA = v }},
				{"certSecret", t.CertSecret, func(v string) { cfg.TLSConfig.Cert = v }},
				{"keySecret", t.KeySecret, func(v string) { cfg.TLSConfig.Key = config.Secret(v) }},
			} {
				if s.ref != nil {
					s.dst(env.ReadSecret(ctx, tlsPath.Child(s.field), s.ref, errs))
				}
			}
		}
	}
	return cfg
}

// ParseDuration parses a spec duration; empty is 0, negative is an error.
func ParseDuration(d v1alpha1.DurationString) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", d, err)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q", d)
	}
	return v, nil
}

// Duration parses d, the field at path; a problem gives 0.
func Duration(path *field.Path, d v1alpha1.DurationString, errs *fielderr.List) time.Duration {
	v, err := ParseDuration(d)
	if err != nil {
		errs.Invalid(path, string(d), err)
	}
	return v
}

// Timeout parses t, the timeout field at path: an integer is a number of seconds, as
// Argo Rollouts writes it, and a string a duration, or a number of seconds once args are
// rendered into it. Unset or a problem gives 0.
func Timeout(path *field.Path, t *intstr.IntOrString, errs *fielderr.List) time.Duration {
	switch {
	case t == nil:
		return 0
	case t.Type == intstr.Int && t.IntVal < 0:
		errs.Add(field.Invalid(path, t.IntVal, fmt.Sprintf("%d seconds is negative", t.IntVal)))
		return 0
	case t.Type == intstr.Int:
		return time.Duration(t.IntVal) * time.Second
	}
	if n, err := strconv.ParseInt(t.StrVal, 10, 32); err == nil {
		return Timeout(path, new(intstr.FromInt32(int32(n))), errs)
	}
	return Duration(path, v1alpha1.DurationString(t.StrVal), errs)
}

// CheckAuth reports what admission rejects in a, the auth field at path: missing required
// fields and more than one kind of credentials.
func CheckAuth(path *field.Path, a *v1alpha1.HTTPAuth) field.ErrorList {
	if a == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	if a.BearerTokenSecret != nil {
		n++
		errs = append(errs, CheckSecretRef(path.Child("bearerTokenSecret"), a.BearerTokenSecret)...)
	}
	if b := a.BasicAuth; b != nil {
		n++
		if b.Username == "" {
			errs = append(errs, field.Required(path.Child("basicAuth", "username"), "is required"))
		}
		errs = append(errs, CheckSecretRef(path.Child("basicAuth", "passwordSecret"), &b.PasswordSecret)...)
	}
	if o := a.OAuth2; o != nil {
		n++
		if o.ClientID == "" {
			errs = append(errs, field.Required(path.Child("oauth2", "clientId"), "is required"))
		}
		if o.TokenURL == "" {
			errs = append(errs, field.Required(path.Child("oauth2", "tokenUrl"), "is required"))
		}
		errs = append(errs, CheckSecretRef(path.Child("oauth2", "clientSecret"), &o.ClientSecret)...)
	}
	if n > 1 {
		errs = append(errs, field.Forbidden(path, "at most one of bearerTokenSecret, basicAuth and oauth2"))
	}
	if t := a.TLS; t != nil {
		for _, s := range []struct {
			field string
			ref   *v1alpha1.SecretKeySelector
		}{{"caSecret", t.CASecret}, {"certSecret", t.CertSecret}, {"keySecret", t.KeySecret}} {
			if s.ref != nil {
				errs = append(errs, CheckSecretRef(path.Child("tls", s.field), s.ref)...)
			}
		}
	}
	return errs
}

// CheckSecretRef reports a reference, the field at path, that lacks the Secret's name or
// key.
func CheckSecretRef(path *field.Path, ref *v1alpha1.SecretKeySelector) field.ErrorList {
	var errs field.ErrorList
	if ref.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), "is required"))
	}
	if ref.Key == "" {
		errs = append(errs, field.Required(path.Child("key"), "is required"))
	}
	return errs
}

// CheckAuthentication reports what admission rejects in a, Argo Rollouts' authentication
// at path: missing required fields and more than one kind.
func CheckAuthentication(path *field.Path, a *v1alpha1.Authentication) field.ErrorList {
	if a == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	if a.SigV4 != nil {
		n++
	}
	if o := a.OAuth2; o != nil {
		n++
		for _, f := range []struct{ name, v string }{{"tokenUrl", o.TokenURL}, {"clientId", o.ClientID}, {"clientSecret", o.ClientSecret}} {
			if f.v == "" {
				errs = append(errs, field.Required(path.Child("oauth2", f.name), "is required"))
			}
		}
	}
	if b := a.BasicAuth; b != nil {
		n++
		if b.Username == "" {
			errs = append(errs, field.Required(path.Child("basicAuth", "username"), "is required"))
		}
	}
	if n > 1 {
		errs = append(errs, field.Forbidden(path, "at most one of sigv4, oauth2 and basicAuth"))
	}
	return errs
}
