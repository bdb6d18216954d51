package providers

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/common/config"
	"github.com/prometheus/sigv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func bearer(token string) config.HTTPClientConfig {
	cfg := config.DefaultHTTPClientConfig
	cfg.Authorization = &config.Authorization{Credentials: config.Secret(token)}
	return cfg
}

func TestConfigKeyIncludesSecrets(t *testing.T) {
	assert.Equal(t, ConfigKey(bearer("a"), "x"), ConfigKey(bearer("a"), "x"))
	assert.NotEqual(t, ConfigKey(bearer("a")), ConfigKey(bearer("b")), "a rotated secret is a new configuration")
	assert.NotEqual(t, ConfigKey(bearer("a"), map[string]string{"X-Scope-OrgID": "t1"}), ConfigKey(bearer("a"), map[string]string{"X-Scope-OrgID": "t2"}))
	assert.NotContains(t, ConfigKey(bearer("hunter2")), "hunter2")
}

func TestClientCacheReusesClients(t *testing.T) {
	c := NewClientCache("promgate-test", 2)
	a1, k1, err := c.Client(bearer("a"), nil, nil)
	require.NoError(t, err)
	a2, k2, err := c.Client(bearer("a"), nil, nil)
	require.NoError(t, err)
	assert.Same(t, a1, a2)
	assert.Equal(t, k1, k2)

	b, kb, err := c.Client(bearer("b"), nil, nil)
	require.NoError(t, err)
	assert.NotSame(t, a1, b)
	assert.NotEqual(t, k1, kb)

	_, _, err = c.Client(bearer("c"), nil, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, c.Len(), "bounded")
}

func TestClientCacheConcurrentFirstUseBuildsOnce(t *testing.T) {
	c := NewClientCache("promgate-test", 0)
	cfg := bearer("a")
	clients := make([]*http.Client, 20)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			var err error
			clients[i], _, err = c.Client(cfg, map[string]string{"X-Scope-OrgID": "t"}, nil)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	for _, cl := range clients {
		assert.Same(t, clients[0], cl)
	}
	assert.Nil(t, cfg.HTTPHeaders, "the caller's config is not modified")
}

func TestClientCacheSendsAuthAndHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()

	cfg := config.DefaultHTTPClientConfig
	cfg.BearerToken = "tok" // the deprecated field still works, normalised by Validate
	cfg.HTTPHeaders = &config.Headers{Headers: map[string]config.Header{"X-Extra": {Values: []string{"1"}}}}
	client, _, err := NewClientCache("promgate-test", 0).Client(cfg, map[string]string{"X-Scope-OrgID": "tenant-a"}, nil)
	require.NoError(t, err)
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()

	assert.Equal(t, "Bearer tok", got.Get("Authorization"))
	assert.Equal(t, "tenant-a", got.Get("X-Scope-OrgID"))
	assert.Equal(t, "1", got.Get("X-Extra"))
	assert.Equal(t, "promgate-test", got.Get("User-Agent"))
	assert.Equal(t, config.Secret("tok"), cfg.BearerToken, "the caller's config is not modified")
}

func TestClientCacheRejectsInvalidConfig(t *testing.T) {
	c := NewClientCache("promgate-test", 0)
	cfg := config.DefaultHTTPClientConfig
	cfg.BasicAuth = &config.BasicAuth{Username: "u", Password: "p"}
	cfg.BearerToken = "t"
	_, _, err := c.Client(cfg, nil, nil)
	require.ErrorContains(t, err, "invalid HTTP client configuration")

	_, _, err = c.Client(config.DefaultHTTPClientConfig, map[string]string{"Authorization": "Bearer x"}, nil)
	require.ErrorContains(t, err, `setting header "Authorization" is not allowed`)
	assert.Equal(t, 0, c.Len())
}

func TestClientCacheSignsWithSigV4(t *testing.T) {
	// Credentials from the environment, as on a pod with them injected; no shared config
	// or instance metadata of the machine running the test is consulted.
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()

	c := NewClientCache("promgate-test", 0)
	client, key, err := c.Client(config.DefaultHTTPClientConfig, map[string]string{"X-Scope-OrgID": "t"}, &sigv4.SigV4Config{Region: "eu-west-3"})
	require.NoError(t, err)
	resp, err := client.Get(srv.URL + "/api/v1/query?query=up")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Regexp(t, `^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/eu-west-3/aps/aws4_request, SignedHeaders=\S+, Signature=[0-9a-f]{64}$`, got.Get("Authorization"))
	assert.NotEmpty(t, got.Get("X-Amz-Date"))
	assert.Equal(t, "t", got.Get("X-Scope-OrgID"))

	_, unsigned, err := c.Client(config.DefaultHTTPClientConfig, map[string]string{"X-Scope-OrgID": "t"}, nil)
	require.NoError(t, err)
	assert.NotEqual(t, key, unsigned, "signing is part of the configuration")
}
