package providers

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/common/config"
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
	a1, k1, err := c.Client(bearer("a"), nil)
	require.NoError(t, err)
	a2, k2, err := c.Client(bearer("a"), nil)
	require.NoError(t, err)
	assert.Same(t, a1, a2)
	assert.Equal(t, k1, k2)

	b, kb, err := c.Client(bearer("b"), nil)
	require.NoError(t, err)
	assert.NotSame(t, a1, b)
	assert.NotEqual(t, k1, kb)

	_, _, err = c.Client(bearer("c"), nil)
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
			clients[i], _, err = c.Client(cfg, map[string]string{"X-Scope-OrgID": "t"})
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
	client, _, err := NewClientCache("promgate-test", 0).Client(cfg, map[string]string{"X-Scope-OrgID": "tenant-a"})
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
	_, _, err := c.Client(cfg, nil)
	require.ErrorContains(t, err, "invalid HTTP client configuration")

	_, _, err = c.Client(config.DefaultHTTPClientConfig, map[string]string{"Authorization": "Bearer x"})
	require.ErrorContains(t, err, `setting header "Authorization" is not allowed`)
	assert.Equal(t, 0, c.Len())
}
