package alerts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

const (
	// readHeaderTimeout stops slow-header clients from holding connections open.
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds reading a whole (at most MaxBody) payload.
	readTimeout = 30 * time.Second
	// shutdownTimeout lets deliveries in flight finish their status patches on shutdown.
	shutdownTimeout = 15 * time.Second
)

// server serves the alert webhook as a manager Runnable.
type server struct {
	addr    string
	handler http.Handler
}

// NewServer returns a Runnable serving h at path on addr (e.g. ":9443") until the
// manager stops; other paths answer 404.
func NewServer(addr, path string, h http.Handler) manager.Runnable {
	if path == "" {
		path = "/"
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	return &server{addr: addr, handler: mux}
}

// NeedLeaderElection is false: every replica may record alerts, since the patches carry
// the resourceVersion and repeats change nothing, so Alertmanager can reach any replica
// behind the Service.
func (s *server) NeedLeaderElection() bool { return false }

// Start serves until ctx is done, then shuts down gracefully.
func (s *server) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("alert-webhook")
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("alert webhook: listening on %s: %w", s.addr, err)
	}
	// Requests keep the logger but not the manager's cancellation, so a shutdown lets
	// a delivery in flight finish instead of failing its patch half-way.
	base := logf.IntoContext(context.WithoutCancel(ctx), log)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving Alertmanager webhook", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("alert webhook: serving on %s: %w", s.addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("alert webhook: shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("alert webhook: serving on %s: %w", s.addr, err)
	}
	return nil
}
