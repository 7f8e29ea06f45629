package testsrv

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is go-containerregistry's in-process registry, behind registry
// v2 token auth when user is set: /v2/ answers 401 with a Bearer
// challenge, /token trades Basic credentials for a token.
type Registry struct {
	*httptest.Server
	user, pass string
	mu         sync.Mutex
	blobGets   int // GETs of blobs (layers, config)
	manifests  int // GETs and HEADs of manifests
}

const token = "tok-0123456789"

// NewRegistry serves an empty registry until the test ends; user "" means
// no auth.
func NewRegistry(t testing.TB, user, pass string) *Registry {
	t.Helper()
	r := &Registry{user: user, pass: pass}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/token" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.user || p != r.pass {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"token": token})
			return
		}
		if r.user != "" && req.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"`, r.URL))
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		r.mu.Lock()
		switch {
		case strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet:
			r.blobGets++
		case strings.Contains(req.URL.Path, "/manifests/") && req.Method != http.MethodPut:
			r.manifests++
		}
		r.mu.Unlock()
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// Host is the registry's host:port, as image references name it.
func (r *Registry) Host() string { return strings.TrimPrefix(r.URL, "http://") }

// Counts is the blob GETs and the manifest GETs and HEADs so far.
func (r *Registry) Counts() (blobs, manifests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets, r.manifests
}

// Push writes a random image of the given number of layers to repoTag
// (host-relative) and returns it.
func (r *Registry) Push(t testing.TB, repoTag string, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(3000, layers)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Host() + "/" + repoTag)
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
