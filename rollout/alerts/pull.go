package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxPullBody bounds the v2 alerts response; a busy Alertmanager's full list fits with room
// to spare, and a runaway response cannot exhaust the controller's memory.
const maxPullBody = 32 << 20

// apiAlert is the part of an Alertmanager v2 API alert that promgate uses.
type apiAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
}

// Firing returns the alerts that Alertmanager at address (its base URL) holds as active,
// neither silenced nor inhibited, each with Status "firing". Errors name the address.
func Firing(ctx context.Context, c *http.Client, address string) ([]Alert, error) {
	if c == nil {
		c = http.DefaultClient
	}
	u, err := url.Parse(strings.TrimSpace(address))
	if err != nil {
		return nil, fmt.Errorf("alertmanager %q: invalid address: %w", address, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager %q: address must be an http(s) URL with a host", address)
	}
	// JoinPath keeps a path prefix such as http://host/alertmanager behind a proxy.
	u = u.JoinPath("api", "v2", "alerts")
	u.RawQuery = url.Values{
		"active":    {"true"},
		"silenced":  {"false"},
		"inhibited": {"false"},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %q: building request: %w", address, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %q: %w", address, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPullBody+1))
	if err != nil {
		return nil, fmt.Errorf("alertmanager %q: reading response: %w", address, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("alertmanager %q: %s: %s", address, resp.Status, snippet(body))
	}
	if len(body) > maxPullBody {
		return nil, fmt.Errorf("alertmanager %q: response over %d bytes", address, maxPullBody)
	}
	var list []apiAlert
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("alertmanager %q: malformed alerts response: %w", address, err)
	}
	firing := make([]Alert, 0, len(list))
	for _, a := range list {
		// "unprocessed" alerts have not been checked against silences and inhibitions
		// yet; Alertmanager would not notify the webhook of them either, and the next
		// check sees them once processed.
		if a.Status.State != "active" {
			continue
		}
		firing = append(firing, Alert{Labels: a.Labels, Status: StatusFiring})
	}
	return firing, nil
}

// snippet is the start of an error response body, enough to say what went wrong.
func snippet(body []byte) string {
	const limit = 256
	s := strings.TrimSpace(string(body))
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return strconv.Quote(s)
}
