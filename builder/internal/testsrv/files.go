package testsrv

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Files serves named byte slices with Range support and records what it
// saw.
type Files struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	gets   map[string]int // every request but HEAD
	heads  map[string]int
	ranges []string
	active atomic.Int32
	peak   atomic.Int32
	// Throttle slows full-body GETs down so progress and parallelism show.
	// Set it before the first request.
	Throttle time.Duration
	cutOnce  map[string]bool
}

// NewFiles serves files (path -> body; nil for none yet) until the test ends.
func NewFiles(t testing.TB, files map[string][]byte) *Files {
	if files == nil {
		files = map[string][]byte{}
	}
	f := &Files{files: files, gets: map[string]int{}, heads: map[string]int{}, cutOnce: map[string]bool{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *Files) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	body, ok := f.files[r.URL.Path]
	if r.Method == http.MethodHead {
		f.heads[r.URL.Path]++
	} else {
		f.gets[r.URL.Path]++
	}
	if rg := r.Header.Get("Range"); rg != "" {
		f.ranges = append(f.ranges, r.URL.Path+" "+rg)
	}
	cut := f.cutOnce[r.URL.Path] && r.Method == http.MethodGet && r.Header.Get("Range") == ""
	if cut {
		delete(f.cutOnce, r.URL.Path)
	}
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	switch {
	case cut:
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nAccept-Ranges: bytes\r\n\r\n", len(body))
		buf.Write(body[:len(body)/2])
		buf.Flush()
		conn.Close()
	case f.Throttle > 0 && r.Method == http.MethodGet && r.Header.Get("Range") == "":
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		for off := 0; off < len(body); off += 32 << 10 {
			w.Write(body[off:min(off+32<<10, len(body))])
			w.(http.Flusher).Flush()
			time.Sleep(f.Throttle)
		}
	default:
		http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(body))
	}
}

// Put serves b at path from now on.
func (f *Files) Put(path string, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = b
}

// CutOnce makes the next plain GET of path send half the body and drop
// the connection.
func (f *Files) CutOnce(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutOnce[path] = true
}

// Gets counts the requests for path other than HEAD.
func (f *Files) Gets(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[path]
}

// Heads counts the HEAD requests for path.
func (f *Files) Heads(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.heads[path]
}

// TotalGets counts the requests other than HEAD, for any path.
func (f *Files) TotalGets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.gets {
		n += v
	}
	return n
}

// Ranges lists the Range requests seen, as "PATH RANGE".
func (f *Files) Ranges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ranges...)
}

// Peak is the most bodies served at once.
func (f *Files) Peak() int { return int(f.peak.Load()) }
