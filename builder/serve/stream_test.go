package serve

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStreamOutlivesWriteTimeout downloads a file that takes a slow reader
// many times the server's WriteTimeout: as long as it keeps reading, the
// download must not be cut (bainoded's WriteTimeout is a minute; a role
// image takes longer).
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	body := make([]byte, 48<<20)
	rand.NewChaCha8([32]byte{3}).Read(body)
	p := filepath.Join(t.TempDir(), "img.raw.zst")
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		immutable(w, r, blob{path: p, sha: "x"}, "application/zstd")
	}))
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	for _, rng := range []string{"", "bytes=1000-"} {
		req, _ := http.NewRequest("GET", srv.URL+"/img", nil)
		want := body
		if rng != "" {
			req.Header.Set("Range", rng)
			want = body[1000:]
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		buf := make([]byte, 256<<10)
		for {
			n, err := resp.Body.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Range %q: the download broke after %d of %d bytes: %v", rng, got.Len(), len(want), err)
			}
			time.Sleep(5 * time.Millisecond) // a slow disk behind the reader
		}
		resp.Body.Close()
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("Range %q: got %d bytes, want %d, or they differ", rng, got.Len(), len(want))
		}
	}
}
