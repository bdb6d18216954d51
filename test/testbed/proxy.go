package testbed

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// SlowProxy is an HTTP reverse proxy in front of a server (Prometheus, for the chaos
// suite) that can be told to answer late, as an overloaded server or a congested network
// path does. While the server is down, requests get 502 from the proxy.
type SlowProxy struct {
	// URL is the proxy's address, to give clients instead of the server's.
	URL   string
	delay atomic.Int64
}

// StartSlowProxy serves a proxy to target on loopback until the test ends.
func StartSlowProxy(t testing.TB, target string) *SlowProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("parsing the proxy's target %q: %v", target, err)
	}
	p := &SlowProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	// A server that is down is one of the faults the proxy stands in front of: answered,
	// not logged.
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	p.URL = "http://" + Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(p.delay.Load()); d > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(d):
			}
		}
		rp.ServeHTTP(w, r)
	}))
	return p
}

// SetDelay makes every request from now on wait d before it is forwarded; 0 forwards at once.
func (p *SlowProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }
