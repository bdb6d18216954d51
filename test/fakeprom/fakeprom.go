// Package fakeprom is a fake Prometheus HTTP API for unit tests, with no test bed: its
// /api/v1/query_range answers each query with the series a test set for it, at the steps
// the request asks, and counts the requests of each query.
package fakeprom

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// Series is one series of an answer.
type Series struct {
	Labels map[string]string
	// Values are the series' points from the range's start, one per step; a range
	// longer than Values has no point past them, as for a series that stops.
	Values []float64
}

// Server answers range queries from the series set for them; a query set with nothing,
// or not set at all, has no series.
type Server struct {
	// URL is the API's base address.
	URL string

	mu       sync.Mutex
	series   map[string][]Series
	errors   map[string]string
	requests map[string]int
}

// New starts a Server, stopped when tb ends.
func New(tb testing.TB) *Server {
	s := &Server{series: map[string][]Series{}, errors: map[string]string{}, requests: map[string]int{}}
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Set makes query answer with series.
func (s *Server) Set(query string, series ...Series) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series[query] = series
}

// Fail makes query answer with a bad_data error saying msg.
func (s *Server) Fail(query, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors[query] = msg
}

// Requests is how many range queries asked query.
func (s *Server) Requests(query string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[query]
}

// Total is how many range queries were asked.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.requests {
		n += c
	}
	return n
}

type matrixSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

// ServeHTTP answers /api/v1/query_range as Prometheus does, times in float seconds.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	start, err1 := strconv.ParseFloat(r.Form.Get("start"), 64)
	end, err2 := strconv.ParseFloat(r.Form.Get("end"), 64)
	step, err3 := strconv.ParseFloat(r.Form.Get("step"), 64)
	if err1 != nil || err2 != nil || err3 != nil || step <= 0 {
		http.Error(w, "bad start, end or step", http.StatusBadRequest)
		return
	}
	query := r.Form.Get("query")
	s.mu.Lock()
	s.requests[query]++
	series, msg := s.series[query], s.errors[query]
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if msg != "" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": msg})
		return
	}
	result := make([]matrixSeries, 0, len(series))
	for _, ser := range series {
		m := matrixSeries{Metric: ser.Labels, Values: [][2]any{}}
		if m.Metric == nil {
			m.Metric = map[string]string{}
		}
		for i, v := range ser.Values {
			ts := start + float64(i)*step
			if ts > end {
				break
			}
			m.Values = append(m.Values, [2]any{ts, strconv.FormatFloat(v, 'g', -1, 64)})
		}
		result = append(result, m)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "matrix", "result": result},
	})
}
