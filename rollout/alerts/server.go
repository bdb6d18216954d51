package alerts

import (
	"context"
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

// NewServer returns a Runnable serving h at path on addr (e.g. ":9443") until the
// manager stops; other paths answer 404. It runs on every replica, leader or not: the
// patches it makes carry the resourceVersion and repeats change nothing, so Alertmanager
// can reach any replica behind the Service.
func NewServer(addr, path string, h http.Handler) manager.Runnable {
	if path == "" {
		path = "/"
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	// Requests get the logger but not the manager's cancellation, so a shutdown lets a
	// delivery in flight finish instead of failing its patch half-way.
	base := logf.IntoContext(context.Background(), logf.Log.WithName("alert-webhook"))
	return &manager.Server{
		Name: "alert-webhook",
		Server: &http.Server{
			Addr:              addr,
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			BaseContext:       func(net.Listener) context.Context { return base },
		},
		ShutdownTimeout: new(shutdownTimeout),
	}
}
