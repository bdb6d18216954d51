package providers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"sync"

	"github.com/prometheus/common/config"
	"github.com/prometheus/sigv4"
	"k8s.io/utils/dump"
	"k8s.io/utils/lru"
)

// DefaultMaxClients bounds a ClientCache created with size 0. Configurations are few
// (one per endpoint and identity), so this only matters as secrets rotate.
const DefaultMaxClients = 256

// keySalt keeps configuration keys from being a plain hash of a secret: a short password
// could otherwise be recovered from a key that ends up in a log line.
var keySalt = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return b
}()

// ConfigKey identifies a configuration by everything in it, secret values included, so a
// rotated secret gets a new client while an unchanged one keeps its connections.
func ConfigKey(parts ...any) string {
	h := sha256.New()
	h.Write(keySalt)
	// dump.ForHash prints field values (not String or Marshal methods, which redact
	// config.Secret), with sorted map keys and no pointer addresses: stable and complete.
	h.Write([]byte(dump.ForHash(parts)))
	return hex.EncodeToString(h.Sum(nil))
}

// ClientCache keeps one *http.Client per HTTP configuration so measurements reuse
// connections, TLS sessions and OAuth2 tokens instead of rebuilding them.
type ClientCache struct {
	name string
	// mu makes lookup-then-build atomic, so concurrent first uses build one client.
	mu      sync.Mutex
	clients *lru.Cache
}

// NewClientCache holds up to size clients (DefaultMaxClients if size <= 0); name appears
// in the User-Agent. Evicted clients have their idle connections closed.
func NewClientCache(name string, size int) *ClientCache {
	if size <= 0 {
		size = DefaultMaxClients
	}
	return &ClientCache{
		name: name,
		clients: lru.NewWithEvictionFunc(size, func(_ lru.Key, v any) {
			v.(*http.Client).CloseIdleConnections()
		}),
	}
}

// Client returns the client for cfg plus extra headers set on every request (such as
// X-Scope-OrgID) and, when sig is set, SigV4 signing, building it on first use, and the
// key that identifies the configuration. cfg carries secret values already resolved;
// start from config.DefaultHTTPClientConfig to follow redirects and allow HTTP/2.
func (c *ClientCache) Client(cfg config.HTTPClientConfig, headers map[string]string, sig *sigv4.SigV4Config) (*http.Client, string, error) {
	key := ConfigKey(cfg, headers, sig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.clients.Get(key); ok {
		return v.(*http.Client), key, nil
	}
	client, err := newHTTPClient(cfg, headers, c.name)
	if err != nil {
		return nil, "", err
	}
	if sig != nil {
		// Signing wraps the client's transport, as Prometheus does it for remote write.
		rt, err := sigv4.NewSigV4RoundTripper(sig, client.Transport)
		if err != nil {
			return nil, "", fmt.Errorf("sigv4: %w", err)
		}
		client.Transport = rt
	}
	c.clients.Add(key, client)
	return client, key, nil
}

// Len reports how many clients are cached.
func (c *ClientCache) Len() int { return c.clients.Len() }

func newHTTPClient(cfg config.HTTPClientConfig, headers map[string]string, name string) (*http.Client, error) {
	// Validate normalises in place, including through the Authorization pointer: work on
	// copies so the caller's config, possibly shared across goroutines, is left alone.
	if cfg.Authorization != nil {
		a := *cfg.Authorization
		cfg.Authorization = &a
	}
	if len(headers) > 0 {
		merged := &config.Headers{Headers: map[string]config.Header{}}
		if cfg.HTTPHeaders != nil {
			maps.Copy(merged.Headers, cfg.HTTPHeaders.Headers)
		}
		for k, v := range headers {
			h := merged.Headers[k]
			h.Values = append(h.Values[:len(h.Values):len(h.Values)], v)
			merged.Headers[k] = h
		}
		cfg.HTTPHeaders = merged
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid HTTP client configuration: %w", err)
	}
	client, err := config.NewClientFromConfig(cfg, name, config.WithUserAgent(name))
	if err != nil {
		return nil, fmt.Errorf("building HTTP client: %w", err)
	}
	return client, nil
}
