package loadgen

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

var body = strings.Repeat("user-data\n", 100)

// server answers /ok with body, /etag with 304 when asked, /close with
// Connection: close and /chunked with a chunked body; it counts requests
// and connections.
func server(t *testing.T) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	var requests, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(body))
		case "/etag":
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Write([]byte(body))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte(body))
		case "/chunked":
			w.Write([]byte("part"))
			w.(http.Flusher).Flush()
			w.Write([]byte("more"))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start() // on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv, &requests, &conns
}

func run(t *testing.T, srv *httptest.Server, cfg Config) *Result {
	t.Helper()
	cfg.Addr = srv.Listener.Addr().String()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestClosedAndOpenLoop(t *testing.T) {
	for _, rate := range []float64{0, 5000} {
		srv, requests, conns := server(t)
		res := run(t, srv, Config{Path: "/ok", Conns: 4, Requests: 101, Rate: rate})
		if res.Requests != 101 || res.Errors != 0 || res.Status[200] != 101 || len(res.Status) != 1 {
			t.Errorf("rate %g: got %d answers, %d errors, status %v (%v)", rate, res.Requests, res.Errors, res.Status, res.FirstErr)
		}
		if res.BodyBytes != int64(101*len(body)) {
			t.Errorf("rate %g: got %d body bytes, want %d", rate, res.BodyBytes, 101*len(body))
		}
		if requests.Load() != 101 || conns.Load() != 4 {
			t.Errorf("rate %g: server saw %d requests on %d connections, want 101 on 4", rate, requests.Load(), conns.Load())
		}
		if len(res.Latencies) != 101 || res.Percentile(0.5) > res.Max() || res.Rate() <= 0 {
			t.Errorf("rate %g: latencies %d, p50 %v, max %v, rate %g", rate, len(res.Latencies), res.Percentile(0.5), res.Max(), res.Rate())
		}
	}
}

func TestHeadersAndStatus(t *testing.T) {
	srv, _, _ := server(t)
	res := run(t, srv, Config{Path: "/etag", Header: []string{`If-None-Match: "v1"`}, Conns: 2, Requests: 10})
	if res.Status[304] != 10 || res.BodyBytes != 0 || res.Errors != 0 {
		t.Errorf("304: got status %v, %d body bytes, %d errors", res.Status, res.BodyBytes, res.Errors)
	}
	res = run(t, srv, Config{Path: "/missing", Conns: 2, Requests: 10})
	if res.Status[404] != 10 || res.Errors != 0 || res.Requests != 10 {
		t.Errorf("404: got status %v, %d errors", res.Status, res.Errors)
	}
}

func TestConnectionClose(t *testing.T) {
	srv, requests, conns := server(t)
	res := run(t, srv, Config{Path: "/close", Conns: 2, Requests: 10})
	if res.Status[200] != 10 || res.Errors != 0 || res.BodyBytes != int64(10*len(body)) {
		t.Errorf("got status %v, %d errors, %d bytes (%v)", res.Status, res.Errors, res.BodyBytes, res.FirstErr)
	}
	if requests.Load() != 10 || conns.Load() != 10 {
		t.Errorf("server saw %d requests on %d connections, want 10 on 10", requests.Load(), conns.Load())
	}
}

func TestChunkedFails(t *testing.T) {
	srv, _, _ := server(t)
	res := run(t, srv, Config{Path: "/chunked", Conns: 1, Requests: 3})
	if res.Errors != 3 || res.Requests != 0 || !errors.Is(res.FirstErr, errChunked) {
		t.Errorf("got %d errors, %d answers, first error %v; want 3 errors from chunking", res.Errors, res.Requests, res.FirstErr)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := Run(t.Context(), Config{Addr: "127.0.0.1:1", Conns: 0, Requests: 1}); err == nil {
		t.Error("0 connections: no error")
	}
}

func TestWarmup(t *testing.T) {
	srv, requests, conns := server(t)
	res := run(t, srv, Config{Path: "/ok", Conns: 3, Requests: 5, Warmup: true, Rate: 1000})
	if res.Status[200] != 5 || res.BodyBytes != int64(5*len(body)) || res.Errors != 0 {
		t.Errorf("got status %v, %d bytes, %d errors; the warmup must not count", res.Status, res.BodyBytes, res.Errors)
	}
	if requests.Load() != 8 || conns.Load() != 3 {
		t.Errorf("server saw %d requests on %d connections, want 8 on 3", requests.Load(), conns.Load())
	}
}
