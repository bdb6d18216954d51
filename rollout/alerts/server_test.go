package alerts

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/promgate/promgate/api/v1alpha1"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestServer(t *testing.T) {
	w, c, _ := newWebhook(t, nil, tokenSecret(testToken),
		rollout("shop", "checkout", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`}))
	addr := freeAddr(t)
	run := NewServer(addr, "/alerts", w)
	ler, ok := run.(manager.LeaderElectionRunnable)
	require.True(t, ok)
	assert.False(t, ler.NeedLeaderElection())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Start(ctx) }()

	url := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/other")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	}, 5*time.Second, 20*time.Millisecond)

	req, err := http.NewRequest(http.MethodPost, url+"/alerts", strings.NewReader(payload(t, firing("alertname", "HighErrorRate"))))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotNil(t, get(t, c, "shop", "checkout").Status.AlertAbort)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestServerListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	err = NewServer(ln.Addr().String(), "/alerts", http.NotFoundHandler()).Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), ln.Addr().String())
}
