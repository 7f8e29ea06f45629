// Package serve is bainoded's HTTP surface, in the manner of Matchbox:
//
//   - machines read their seed without credentials: GET /nocloud/{key}/{file}
//     and GET /ipxe/{mac}, where key is a MAC in any notation or a hostname;
//   - machines report progress with their own token: POST /report/{host}
//     (cloud-init webhook events) and POST /phone-home/{host} (phone_home);
//   - operators manage the inventory under /api/v1 with a bearer token, on
//     a separate handler (Handlers) that bainoded serves on its own listener.
//
// Machine reads never change state, and nothing a machine can send reaches
// the admin API.
package serve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

// Request body limits. A reporting event can carry base64 log files when
// post_files is set, so it gets more room than phone_home's few keys.
const (
	maxReportBody    = 256 << 10
	maxPhoneHomeBody = 64 << 10
	maxNodeBody      = 1 << 20
	maxSiteBody      = 4 << 20
)

// Files are the NoCloud documents rendered for one node. Nil VendorData or
// NetworkConfig is served as an empty document.
type Files struct {
	UserData      []byte
	MetaData      []byte
	VendorData    []byte
	NetworkConfig []byte
}

// URLs tell a renderer how the node reaches this server; Report and
// PhoneHome already carry the node's token.
type URLs struct {
	Base      string // scheme://host[:port], no trailing slash
	Seed      string // Base/nocloud/{hostname}/, with the trailing slash cloud-init needs
	Report    string // endpoint for a cloud-init "reporting: {type: webhook}" handler
	PhoneHome string // url for cloud-init's phone_home module (post: all)
}

// Renderer turns a site file and one node into its cloud-init documents.
// It must be deterministic: responses are cached and tagged by content.
type Renderer interface {
	Render(site []byte, node inventory.Node, urls URLs) (Files, error)
}

// RendererFunc adapts a function to Renderer.
type RendererFunc func(site []byte, node inventory.Node, urls URLs) (Files, error)

func (f RendererFunc) Render(site []byte, node inventory.Node, urls URLs) (Files, error) {
	return f(site, node, urls)
}

// Validator checks a site file before it is stored; its error text is
// returned to the operator as is, so it should name file:line:col.
type Validator func(site []byte) error

// Config configures New. Store and Renderer are required.
type Config struct {
	Store     inventory.Store
	Renderer  Renderer
	Validator Validator // nil accepts any site that renders for every node

	// BaseURL is how machines reach this server, e.g. http://10.0.0.1:8080.
	// Empty means the scheme and Host header of each request.
	BaseURL string
	// BindIP serves a node's seed and iPXE script only to requests from the
	// node's registered IP; nodes without one get nothing.
	BindIP bool

	// Kernel and Initrd are the URLs the iPXE script boots; KernelArgs are
	// added before the ds= argument (e.g. "ip=dhcp url=... autoinstall").
	Kernel, Initrd, KernelArgs string

	// PXEDir holds the netboot trees of 'bainode pxe' (DIR/<id>/), served
	// at GET /pxe/<id>/...; empty serves none.
	PXEDir string

	// RevisionTTL is how long a store revision, and so every cached render,
	// is trusted before the store is asked again. Changes made through this
	// server take effect at once. 0 asks on every request, except that
	// requests arriving while one is asking use the revision known so far.
	RevisionTTL time.Duration
	Logger      *slog.Logger

	// Deploy turns on image mode (deploy.go); nil leaves it off.
	Deploy *Deploy
}

type server struct {
	cfg    Config
	store  inventory.Store
	log    *slog.Logger
	cache  *cache
	tokens nodeTokens
	deploy *deployAssets
	secret struct {
		sync.Mutex
		key []byte
	}
}

// New returns one handler for every route: one-port mode, where the admin
// API shares the machines' listener. bainoded uses it only when asked.
func New(cfg Config) http.Handler {
	machine, admin := Handlers(cfg)
	mux := http.NewServeMux()
	mux.Handle("/api/", admin)
	mux.Handle("/", machine)
	return guard(mux)
}

// Handlers returns the machine handler (seeds, iPXE, reports, /healthz),
// which never serves /api/, and the admin handler (/api/ with a bearer
// token, and /healthz), which bainoded puts on its own listener so admin
// tokens stay off the provisioning network.
func Handlers(cfg Config) (machine, admin http.Handler) {
	if cfg.Store == nil || cfg.Renderer == nil {
		panic("serve: Config needs a Store and a Renderer")
	}
	s := &server{cfg: cfg, store: cfg.Store, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.cache = newCache(cfg.RevisionTTL)
	s.cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.Deploy != nil {
		d, err := loadDeploy(cfg.Deploy)
		if err != nil {
			panic("serve: " + err.Error()) // bainoded checks with CheckDeploy first
		}
		s.deploy = d
	}

	healthz := func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }
	mm := http.NewServeMux()
	mm.HandleFunc("GET /nocloud/{key}/{file}", s.nocloud)
	mm.HandleFunc("GET /ipxe/{mac}", s.ipxe)
	mm.HandleFunc("GET /pxe/{id}/{path...}", s.pxe)
	mm.HandleFunc("POST /report/{host}", s.report)
	mm.HandleFunc("POST /report/{host}/{token}", s.report)
	mm.HandleFunc("POST /phone-home/{host}", s.phoneHome)
	mm.HandleFunc("POST /phone-home/{host}/{token}", s.phoneHome)
	mm.HandleFunc("GET /healthz", healthz)
	s.deployRoutes(mm)

	am := http.NewServeMux()
	am.Handle("/api/", s.requireAdmin(s.adminMux()))
	am.HandleFunc("GET /healthz", healthz)
	return guard(mm), guard(am)
}

// guard answers 404 to paths that try to escape their segment before the
// mux sees them; the mux would otherwise redirect ".." to a cleaned path.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := strings.ToLower(r.URL.EscapedPath())
		if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") || strings.Contains(raw, "%00") ||
			strings.Contains(r.URL.Path, "\\") || strings.Contains(r.URL.Path, "//") {
			notFound(w)
			return
		}
		for rest := r.URL.Path; rest != ""; { // strings.Split would allocate on every request
			var seg string
			seg, rest, _ = strings.Cut(rest, "/")
			if seg == "." || seg == ".." {
				notFound(w)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// notFound is the one answer for anything a machine may not see, so
// unknown keys and forbidden ones look the same.
func notFound(w http.ResponseWriter) { http.Error(w, "not found", http.StatusNotFound) }

// baseURL is the configured URL or, failing that, the one the client used.
// Odd Host headers are refused because the result is written into YAML.
func (s *server) baseURL(r *http.Request) (string, bool) {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL, true
	}
	host := r.Host
	if host == "" || len(host) > 260 {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return "", false
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + host, true
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// allowed applies bind-ip mode.
func (s *server) allowed(r *http.Request, nodeIP string) bool {
	if !s.cfg.BindIP {
		return true
	}
	want, err := netip.ParseAddr(nodeIP)
	return err == nil && want.Unmap() == remoteAddr(r)
}

// nodeSecret caches the fleet key; it never changes once created.
func (s *server) nodeSecret(ctx context.Context) ([]byte, error) {
	s.secret.Lock()
	defer s.secret.Unlock()
	if s.secret.key == nil {
		k, err := s.store.Secret(ctx)
		if err != nil {
			return nil, err
		}
		s.secret.key = k
	}
	return s.secret.key, nil
}

func (s *server) urls(base string, hostname string, token string) URLs {
	return URLs{
		Base:      base,
		Seed:      base + "/nocloud/" + hostname + "/",
		Report:    base + "/report/" + hostname + "/" + token,
		PhoneHome: base + "/phone-home/" + hostname + "/" + token,
	}
}

// bodyError maps a failed body read to 413 or 400.
func bodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	http.Error(w, "cannot read request body", http.StatusBadRequest)
}

// storeError reports inventory failures without their details, which may
// name internal addresses.
func (s *server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("inventory", "route", r.Pattern, "err", err) // the path may hold a token
	http.Error(w, "inventory unavailable", http.StatusServiceUnavailable)
}
