package fetch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Every server in these tests is an httptest server on 127.0.0.1.

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fileServer serves named byte slices with Range support and records what
// it saw.
type fileServer struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	gets   map[string]int
	heads  map[string]int
	ranges []string
	active atomic.Int32
	peak   atomic.Int32
	// throttle slows full-body GETs down so progress and parallelism show.
	throttle time.Duration
	// cutOnce makes the first plain GET of a path send half the body and
	// drop the connection.
	cutOnce map[string]bool
}

func newFileServer(t *testing.T, files map[string][]byte) *fileServer {
	fs := &fileServer{files: files, gets: map[string]int{}, heads: map[string]int{}, cutOnce: map[string]bool{}}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	body, ok := fs.files[r.URL.Path]
	if r.Method == http.MethodHead {
		fs.heads[r.URL.Path]++
	} else {
		fs.gets[r.URL.Path]++
	}
	if rg := r.Header.Get("Range"); rg != "" {
		fs.ranges = append(fs.ranges, r.URL.Path+" "+rg)
	}
	cut := fs.cutOnce[r.URL.Path] && r.Method == http.MethodGet && r.Header.Get("Range") == ""
	if cut {
		delete(fs.cutOnce, r.URL.Path)
	}
	fs.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	n := fs.active.Add(1)
	defer fs.active.Add(-1)
	for p := fs.peak.Load(); n > p && !fs.peak.CompareAndSwap(p, n); p = fs.peak.Load() {
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
	case fs.throttle > 0 && r.Method == http.MethodGet && r.Header.Get("Range") == "":
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		for off := 0; off < len(body); off += 32 << 10 {
			w.Write(body[off:min(off+32<<10, len(body))])
			w.(http.Flusher).Flush()
			time.Sleep(fs.throttle)
		}
	default:
		http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(body))
	}
}

func (fs *fileServer) count(path string) (gets, heads int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.gets[path], fs.heads[path]
}

func (fs *fileServer) totalGets() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := 0
	for _, v := range fs.gets {
		n += v
	}
	return n
}

// syncBuffer is a goroutine-safe progress sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testOptions() Options {
	return Options{Jobs: 4, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

func openTestCache(t *testing.T) *Cache {
	t.Helper()
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dirEntries lists the files under dir (recursively), relative to it.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// testKey makes a signing key (ed25519: fast on shared CI cores).
func testKey(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// publicArmored is the entity's public key as an armored block.
func publicArmored(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}

func detachSign(t *testing.T, e *openpgp.Entity, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := openpgp.DetachSign(&b, e, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func clearSign(t *testing.T, e *openpgp.Entity, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, e.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%q does not contain %q", s, sub)
		}
	}
}
