package serve_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/serve"
)

var seedNames = []string{"user-data", "meta-data", "vendor-data", "network-config"}

func TestSeedByKey(t *testing.T) {
	f := newFixture(t, nil)
	keys := map[string]string{
		"52:54:00:aa:bb:01": "gpu1", "52-54-00-AA-BB-01": "gpu1", "5254.00aa.bb01": "gpu1",
		"525400AABB01": "gpu1", "52:54:00:aa:bb:02": "gpu1", "gpu1": "gpu1", "GPU1": "gpu1",
		"52:54:00:aa:bb:03": "gpu2", "mgr": "mgr", "52-54-00-aa-bb-04": "mgr",
	}
	for key, host := range keys {
		for _, file := range seedNames {
			code, body := f.do("GET", "/nocloud/"+key+"/"+file, "", "")
			if want := f.want(host, file); code != 200 || body != want {
				t.Errorf("GET %s/%s: got %d %q, want 200 %q", key, file, code, body, want)
			}
		}
	}
	// Every key of a node shares one render.
	if got := f.render.calls.Load(); got > 3+3 { // 3 at PUT node, 3 now
		t.Errorf("renders: got %d, want at most 6", got)
	}
	code, body := f.do("GET", "/nocloud/gpu1/user-data", "", "")
	if code != 200 || !strings.Contains(body, "/phone-home/gpu1/"+f.tokens["gpu1"]) {
		t.Errorf("user-data lacks the node's phone-home url: %q", body)
	}
	resp := f.req("HEAD", "/nocloud/gpu1/meta-data", "", "")
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
		t.Errorf("HEAD: got %d etag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
}

// TestHexHostname covers keys that read as both a MAC and a hostname: the
// MAC wins, and a hostname-only match still works.
func TestHexHostname(t *testing.T) {
	f := newFixture(t, nil)
	f.do("PUT", "/api/v1/nodes/deadbeef0001", f.admin, `{"macs": ["52:54:00:00:00:a1"]}`)
	for i := 0; i < 2; i++ { // render, then cache
		if _, body := f.do("GET", "/nocloud/deadbeef0001/meta-data", "", ""); !strings.Contains(body, "marker-deadbeef0001-") {
			t.Errorf("hex hostname: got %q", body)
		}
	}
	f.do("PUT", "/api/v1/nodes/other", f.admin, `{"macs": ["de:ad:be:ef:00:01"]}`)
	for i := 0; i < 2; i++ {
		if _, body := f.do("GET", "/nocloud/deadbeef0001/meta-data", "", ""); !strings.Contains(body, "marker-other-") {
			t.Errorf("mac should win over a hostname: got %q", body)
		}
	}
}

func TestNotFound(t *testing.T) {
	f := newFixture(t, nil)
	paths := []string{
		"/nocloud/52:54:00:00:00:99/user-data", "/nocloud/nobody/user-data", "/nocloud/gpu1/passwd",
		"/nocloud/gpu1/", "/nocloud/gpu1", "/nocloud//user-data", "/nocloud/-x-/user-data",
		"/nocloud/gpu1/../../api/v1/nodes", "/nocloud/../api/v1/nodes", "/nocloud/./gpu1/user-data",
		"/nocloud/..%2fgpu1/user-data", "/nocloud/gpu1%2fuser-data", "/nocloud/gpu1%2Fuser-data/x",
		"/nocloud/%2e%2e/user-data", "/nocloud/gpu1%00/user-data", "/nocloud/gpu1\\..\\x/user-data",
		"/nocloud/gpu1/user-data/", "/nocloud/gpu1/user-data%2f..%2f..%2fapi", "/ipxe/gpu1",
		"/ipxe/52:54:00:00:00:99", "/ipxe/..", "/etc/passwd", "/api/../nocloud/gpu1/user-data",
		"/nocloud/gpu1.x/user-data", "/nocloud/" + strings.Repeat("a", 300) + "/user-data",
	}
	for _, p := range paths {
		code, body := f.raw(p)
		if code != 404 && code != 400 {
			t.Errorf("GET %s: got %d %q, want 404", p, code, body)
		}
		if strings.Contains(body, "marker-") {
			t.Errorf("GET %s leaked node data: %q", p, body)
		}
	}
	// No site yet: nothing to serve, and no detail about why.
	g := &fixture{t: t, store: inventory.NewMemory()}
	g.store.PutNode(t.Context(), inventory.Node{Hostname: "a", MACs: []string{"52:54:00:00:00:01"}})
	g.srv = newServer(t, serve.Config{Store: g.store, Renderer: &testRenderer{}})
	if code, body := g.do("GET", "/nocloud/a/user-data", "", ""); code != 404 || body != "not found\n" {
		t.Errorf("no site: got %d %q, want 404", code, body)
	}
}

func TestETag(t *testing.T) {
	f := newFixture(t, nil)
	resp := f.req("GET", "/nocloud/gpu1/user-data", "", "")
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("GET: got %d, etag %q", resp.StatusCode, etag)
	}
	for _, inm := range []string{etag, `"x", ` + etag, "W/" + etag, "*"} {
		code, body := f.do("GET", "/nocloud/52-54-00-aa-bb-02/user-data", "", "", "If-None-Match", inm)
		if code != http.StatusNotModified || body != "" {
			t.Errorf("If-None-Match %s: got %d %q, want 304 and no body", inm, code, body)
		}
	}
	if code, _ := f.do("GET", "/nocloud/gpu1/meta-data", "", "", "If-None-Match", etag); code != 200 {
		t.Errorf("another file's etag: got %d, want 200", code)
	}
	// A site change makes the old tag stale.
	if code, body := f.do("PUT", "/api/v1/site", f.admin, "site: two\n"); code != 200 {
		t.Fatalf("PUT site: %d %s", code, body)
	}
	resp = f.req("GET", "/nocloud/gpu1/user-data", "", "", "If-None-Match", etag)
	body := readAll(resp)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag || !strings.Contains(body, "site: two") {
		t.Errorf("after site change: got %d etag %s body %q", resp.StatusCode, resp.Header.Get("ETag"), body)
	}
}

// TestCache checks that renders are reused until the store revision moves,
// including changes made behind the server's back (another cluster member).
func TestCache(t *testing.T) {
	f := newFixture(t, nil)
	f.do("GET", "/nocloud/gpu1/user-data", "", "")
	before := f.render.calls.Load()
	for i := 0; i < 20; i++ {
		f.do("GET", "/nocloud/gpu1/user-data", "", "")
		f.do("GET", "/nocloud/52:54:00:aa:bb:02/meta-data", "", "")
	}
	if got := f.render.calls.Load(); got != before {
		t.Errorf("cached GETs rendered %d times", got-before)
	}
	n, _ := f.store.Node(t.Context(), "gpu1")
	n.Overrides = []byte("changed: yes\n")
	f.store.PutNode(t.Context(), n) // not through the server
	if _, body := f.do("GET", "/nocloud/gpu1/user-data", "", ""); !strings.Contains(body, "changed: yes") {
		t.Errorf("node change not visible: %q", body)
	}
	f.store.PutSite(t.Context(), []byte("site: direct\n"))
	if _, body := f.do("GET", "/nocloud/mgr/meta-data", "", ""); !strings.Contains(body, "site: direct") {
		t.Errorf("site change not visible: %q", body)
	}

	// With a TTL, outside changes wait for it but local ones do not.
	g := newFixture(t, func(c *serve.Config) { c.RevisionTTL = time.Hour })
	g.do("GET", "/nocloud/gpu1/user-data", "", "")
	g.store.PutSite(t.Context(), []byte("site: behind\n"))
	if _, body := g.do("GET", "/nocloud/gpu1/user-data", "", ""); strings.Contains(body, "site: behind") {
		t.Errorf("TTL ignored: %q", body)
	}
	g.do("PUT", "/api/v1/site", g.admin, "site: local\n")
	if _, body := g.do("GET", "/nocloud/gpu1/user-data", "", ""); !strings.Contains(body, "site: local") {
		t.Errorf("local site change not visible: %q", body)
	}
}

// flaky fails Revision and node lookups on demand, like a store whose
// leader just died.
type flaky struct {
	inventory.Store
	down bool
}

var errDown = errors.New("no leader")

func (s *flaky) Revision(ctx context.Context) (int64, error) {
	if s.down {
		return 0, errDown
	}
	return s.Store.Revision(ctx)
}

func (s *flaky) Node(ctx context.Context, h string) (inventory.Node, error) {
	if s.down {
		return inventory.Node{}, errDown
	}
	return s.Store.Node(ctx, h)
}

func TestStaleOnError(t *testing.T) {
	f := newFixture(t, nil)
	fl := &flaky{Store: f.store}
	f.srv = newServer(t, serve.Config{Store: fl, Renderer: f.render})
	f.do("GET", "/nocloud/gpu1/user-data", "", "")
	fl.down = true
	if code, body := f.do("GET", "/nocloud/52:54:00:aa:bb:01/user-data", "", ""); code != 200 || !strings.Contains(body, marker("gpu1")) {
		t.Errorf("cached seed while store is down: got %d %q", code, body)
	}
	if code, _ := f.do("GET", "/nocloud/mgr/user-data", "", ""); code != http.StatusServiceUnavailable {
		t.Errorf("uncached seed while store is down: got %d, want 503", code)
	}
	fl.down = false
	if code, _ := f.do("GET", "/nocloud/mgr/user-data", "", ""); code != 200 {
		t.Errorf("after recovery: got %d", code)
	}
}

func TestBindIP(t *testing.T) {
	f := newFixture(t, func(c *serve.Config) { c.BindIP = true })
	// The test client connects from 127.0.0.1: gpu1 is registered there.
	for _, p := range []string{"/nocloud/gpu1/user-data", "/ipxe/52:54:00:aa:bb:01"} {
		if code, _ := f.do("GET", p, "", ""); code != 200 {
			t.Errorf("GET %s from its own ip: got %d", p, code)
		}
	}
	for _, p := range []string{"/nocloud/gpu2/user-data", "/nocloud/mgr/meta-data", "/ipxe/52:54:00:aa:bb:03"} {
		if code, body := f.do("GET", p, "", ""); code != 404 || strings.Contains(body, "marker-") {
			t.Errorf("GET %s from another ip: got %d %q, want 404", p, code, body)
		}
	}
}

func TestIPXE(t *testing.T) {
	f := newFixture(t, nil)
	for _, mac := range []string{"52:54:00:aa:bb:02", "5254.00AA.BB02"} {
		code, script := f.do("GET", "/ipxe/"+mac, "", "")
		seed := f.srv.URL + "/nocloud/52-54-00-aa-bb-02/"
		want := "#!ipxe\nkernel http://boot/vmlinuz initrd=initrd ip=dhcp autoinstall ds=nocloud-net;s=" + seed +
			"\ninitrd --name initrd http://boot/initrd\nboot\n"
		if code != 200 || script != want {
			t.Errorf("GET /ipxe/%s: got %d\n%s\nwant\n%s", mac, code, script, want)
		}
		// cloud-init appends file names to s= as is.
		if code, body := f.do("GET", strings.TrimPrefix(seed, f.srv.URL)+"meta-data", "", ""); code != 200 || body != f.want("gpu1", "meta-data") {
			t.Errorf("seed from ipxe url: got %d %q", code, body)
		}
	}
	g := newFixture(t, func(c *serve.Config) { c.Kernel = "" })
	if code, _ := g.do("GET", "/ipxe/52:54:00:aa:bb:02", "", ""); code != 404 {
		t.Errorf("ipxe without a kernel: got %d, want 404", code)
	}
}

func TestBaseURL(t *testing.T) {
	f := newFixture(t, func(c *serve.Config) { c.BaseURL = "https://seed.example:8443/" })
	_, body := f.do("GET", "/nocloud/gpu1/user-data", "", "")
	if !strings.Contains(body, "https://seed.example:8443/phone-home/gpu1/") {
		t.Errorf("configured base url not used: %q", body)
	}
	g := newFixture(t, nil)
	for _, host := range []string{"evil\"host", "a b", "x/y", "h{x}"} {
		code, body := g.rawHost("/nocloud/gpu1/user-data", host)
		if code == 200 || strings.Contains(body, "marker-") {
			t.Errorf("Host %q: got %d %q", host, code, body)
		}
	}
	code, body := g.rawHost("/nocloud/gpu1/user-data", "seed.lan:8080")
	if code != 200 || !strings.Contains(body, "http://seed.lan:8080/report/gpu1/") {
		t.Errorf("Host seed.lan:8080: got %d %q", code, body)
	}
}

func newServer(t *testing.T, cfg serve.Config) *httptest.Server {
	s := httptest.NewServer(serve.New(cfg))
	t.Cleanup(s.Close)
	return s
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
