package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Every server here listens on 127.0.0.1 (httptest).

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// files is a static file server that counts GETs per path.
type files struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	gets  map[string]int
}

func newFiles(t *testing.T) *files {
	f := &files{files: map[string][]byte{}, gets: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body, ok := f.files[r.URL.Path]
		if r.Method == http.MethodGet {
			f.gets[r.URL.Path]++
		}
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(body))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *files) put(path string, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = b
}

func (f *files) getCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[path]
}

func testKey(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func clearSign(t *testing.T, e *openpgp.Entity, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, e.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
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

// deb is a package of a fake apt repository.
type deb struct{ name, version, depends string }

func (d deb) file() string {
	v := d.version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return fmt.Sprintf("%s_%s_amd64.deb", d.name, v)
}

// aptRepo serves a signed repository under base: dists style
// (base/dists/SUITE/stable/binary-amd64/Packages, debs in base/pool/) or,
// with suite "/", flat (base/Packages, debs in base/). It returns each
// .deb's path and sha256.
func serveAptRepo(t *testing.T, f *files, base, suite string, signer *openpgp.Entity, debs []deb) map[string]string {
	t.Helper()
	sums := map[string]string{}
	var pk strings.Builder
	for i, d := range debs {
		body := randomBytes(uint64(len(base)*100+i), 1000+i*13)
		filename := "pool/stable/" + d.file()
		if suite == "/" {
			filename = "./" + d.file()
		}
		p := base + "/" + strings.TrimPrefix(filename, "./")
		f.put(p, body)
		sums[p] = sumHex(body)
		fmt.Fprintf(&pk, "Package: %s\nVersion: %s\nArchitecture: amd64\n", d.name, d.version)
		if d.depends != "" {
			fmt.Fprintf(&pk, "Depends: %s\n", d.depends)
		}
		fmt.Fprintf(&pk, "Filename: %s\nSize: %d\nSHA256: %s\n\n", filename, len(body), sumHex(body))
	}
	dist, index := base+"/dists/"+suite+"/", "stable/binary-amd64/Packages"
	if suite == "/" {
		dist, index = base+"/", "Packages"
	}
	packages := []byte(pk.String())
	f.put(dist+index, packages)
	rel := fmt.Sprintf("Origin: Test\nSuite: %s\nDate: %s\nArchitectures: amd64\nComponents: stable\nSHA256:\n %s %d %s\n",
		suite, time.Now().UTC().Format(time.RFC1123), sumHex(packages), len(packages), index)
	f.put(dist+"InRelease", clearSign(t, signer, rel))
	return sums
}

// testRegistry is go-containerregistry's registry, optionally behind
// token auth (a Bearer challenge; /token takes Basic user:pass).
type testRegistry struct {
	*httptest.Server
	user, pass string
	mu         sync.Mutex
	blobGets   int
}

func newTestRegistry(t *testing.T, user, pass string) *testRegistry {
	r := &testRegistry{user: user, pass: pass}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/token" {
			if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"token": "t0ken"})
			return
		}
		if r.user != "" && req.Header.Get("Authorization") != "Bearer t0ken" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"`, r.URL))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet {
			r.mu.Lock()
			r.blobGets++
			r.mu.Unlock()
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *testRegistry) host() string { return strings.TrimPrefix(r.URL, "http://") }

func (r *testRegistry) blobs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets
}

// push puts a random image at host/repoTag.
func (r *testRegistry) push(t *testing.T, repoTag string) v1.Image {
	t.Helper()
	img, err := random.Image(2000, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host() + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	var opts []remote.Option
	if r.user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass}))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	return img
}
