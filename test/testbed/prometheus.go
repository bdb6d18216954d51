package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/test/testbin"
)

// PrometheusOptions is the configuration a test supplies.
type PrometheusOptions struct {
	// Targets are host:port addresses on loopback scraped as job "test" at /metrics.
	Targets []string
	// ScrapeConfigs are extra scrape_configs entries, as YAML-able maps.
	ScrapeConfigs []map[string]any
	// Rules maps a rule file name to its YAML content (Prometheus rule groups).
	Rules map[string]string
	// Alertmanagers are host:port addresses alerts are sent to.
	Alertmanagers []string
	// ScrapeInterval and EvaluationInterval default to 1s so tests see data quickly.
	ScrapeInterval     time.Duration
	EvaluationInterval time.Duration
}

// Prometheus is a real Prometheus server on loopback.
type Prometheus struct {
	*Process
	// URL is the base address of its HTTP API, e.g. http://127.0.0.1:40123.
	URL string
}

// StartPrometheus starts Prometheus with the test's configuration; it stops with the test.
func StartPrometheus(t testing.TB, opts PrometheusOptions) *Prometheus {
	t.Helper()
	p, err := startPrometheus(t, opts)
	if err != nil {
		t.Fatalf("starting Prometheus: %v", err)
	}
	return p
}

func startPrometheus(t testing.TB, opts PrometheusOptions) (*Prometheus, error) {
	ctx, cancel := startContext()
	defer cancel()
	bin, err := testbin.Path(ctx, "prometheus", testWriter{t})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(LogDir(t), "prometheus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	configPath, err := writePrometheusConfig(dir, opts)
	if err != nil {
		return nil, err
	}
	p := &Prometheus{Process: &Process{Name: "prometheus", Path: bin, LogPath: filepath.Join(LogDir(t), "prometheus.log")}}
	port, err := startListening(ctx, p.Process, func(port int) []string {
		return []string{
			"--config.file=" + configPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			"--web.enable-lifecycle",
			"--log.level=info",
		}
	}, func(port int) error { return httpOK(fmt.Sprintf("http://127.0.0.1:%d/-/ready", port)) })
	if err != nil {
		return nil, err
	}
	p.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(p.Stop)
	return p, nil
}

// Restart starts a stopped Prometheus again on the same port and data, as after an outage.
func (p *Prometheus) Restart(ctx context.Context) error {
	if err := p.Start(); err != nil {
		return err
	}
	return waitReady(ctx, p.Process, func() error { return httpOK(p.URL + "/-/ready") })
}

func writePrometheusConfig(dir string, opts PrometheusOptions) (string, error) {
	scrape, eval := opts.ScrapeInterval, opts.EvaluationInterval
	if scrape == 0 {
		scrape = time.Second
	}
	if eval == 0 {
		eval = time.Second
	}
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     scrape.String(),
			"scrape_timeout":      scrape.String(),
			"evaluation_interval": eval.String(),
		},
	}
	scrapeConfigs := append([]map[string]any{}, opts.ScrapeConfigs...)
	if len(opts.Targets) > 0 {
		scrapeConfigs = append(scrapeConfigs, map[string]any{
			"job_name":       "test",
			"static_configs": []any{map[string]any{"targets": opts.Targets}},
		})
	}
	cfg["scrape_configs"] = scrapeConfigs
	var ruleFiles []string
	for name, content := range opts.Rules {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return "", fmt.Errorf("writing rule file %s: %w", name, err)
		}
		ruleFiles = append(ruleFiles, path)
	}
	if len(ruleFiles) > 0 {
		cfg["rule_files"] = ruleFiles
	}
	if len(opts.Alertmanagers) > 0 {
		cfg["alerting"] = map[string]any{
			"alertmanagers": []any{map[string]any{
				"static_configs": []any{map[string]any{"targets": opts.Alertmanagers}},
			}},
		}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("rendering prometheus.yml: %w", err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	return path, os.WriteFile(path, b, 0o644)
}

// AlertmanagerOptions is the configuration a test supplies.
type AlertmanagerOptions struct {
	// WebhookURL receives every alert (webhook payload version 4).
	WebhookURL string
	// GroupWait, GroupInterval and RepeatInterval default to 0s, 1s and 1h: tests want the
	// first notification at once.
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// HTTPConfig is Alertmanager's http_config for the webhook (e.g. authorization).
	HTTPConfig map[string]any
}

// Alertmanager is a real Alertmanager on loopback.
type Alertmanager struct {
	*Process
	// URL is its base address; Address is host:port for Prometheus's alerting config.
	URL, Address string
}

// StartAlertmanager starts Alertmanager with a webhook receiver; it stops with the test.
func StartAlertmanager(t testing.TB, opts AlertmanagerOptions) *Alertmanager {
	t.Helper()
	a, err := startAlertmanager(t, opts)
	if err != nil {
		t.Fatalf("starting Alertmanager: %v", err)
	}
	return a
}

func startAlertmanager(t testing.TB, opts AlertmanagerOptions) (*Alertmanager, error) {
	ctx, cancel := startContext()
	defer cancel()
	bin, err := testbin.Path(ctx, "alertmanager", testWriter{t})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(LogDir(t), "alertmanager")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if opts.GroupInterval == 0 {
		opts.GroupInterval = time.Second
	}
	if opts.RepeatInterval == 0 {
		opts.RepeatInterval = time.Hour
	}
	webhook := map[string]any{"url": opts.WebhookURL, "send_resolved": true}
	if opts.HTTPConfig != nil {
		webhook["http_config"] = opts.HTTPConfig
	}
	cfg := map[string]any{
		"route": map[string]any{
			"receiver":        "test",
			"group_by":        []string{"..."},
			"group_wait":      opts.GroupWait.String(),
			"group_interval":  opts.GroupInterval.String(),
			"repeat_interval": opts.RepeatInterval.String(),
		},
		"receivers": []any{map[string]any{"name": "test", "webhook_configs": []any{webhook}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("rendering alertmanager.yml: %w", err)
	}
	configPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(configPath, b, 0o644); err != nil {
		return nil, err
	}
	a := &Alertmanager{Process: &Process{Name: "alertmanager", Path: bin, LogPath: filepath.Join(LogDir(t), "alertmanager.log")}}
	port, err := startListening(ctx, a.Process, func(port int) []string {
		return []string{
			"--config.file=" + configPath,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			// An empty address turns clustering off: one Alertmanager needs no gossip port.
			"--cluster.listen-address=",
		}
	}, func(port int) error { return httpOK(fmt.Sprintf("http://127.0.0.1:%d/-/ready", port)) })
	if err != nil {
		return nil, err
	}
	a.Address = "127.0.0.1:" + strconv.Itoa(port)
	a.URL = "http://" + a.Address
	t.Cleanup(a.Stop)
	return a, nil
}
