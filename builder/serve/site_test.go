package serve_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// What a node fetches is what `bainode render` writes for it, byte for byte;
// a node only in the inventory is rendered as if the site listed it; and an
// invalid site is refused with the same file:line:col errors as the CLI.
func TestSiteRenderer(t *testing.T) {
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	store := inventory.NewMemory()
	srv := httptest.NewServer(serve.New(serve.Config{Store: store, Renderer: serve.SiteRenderer(r), Validator: serve.ValidateSite}))
	defer srv.Close()
	tok, _ := inventory.NewToken()
	store.PutAdminToken(t.Context(), inventory.HashToken(tok))
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", spec.ProblemsMediaType)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Problems come as JSON, one by one, and as the text the CLI prints.
	code, body := do("PUT", "/api/v1/site", "version: 1\nnodes:\n  - hostname: a\n    ip: 10.0.0.300\n")
	wantProblem := spec.Problem{File: "site.yaml", Line: 4, Column: 9, Path: "nodes[0].ip", Msg: `"10.0.0.300" is not an IPv4 address`}
	if rej := rejection(t, code, body); len(rej.Problems) != 1 || rej.Problems[0] != wantProblem ||
		rej.Error != wantProblem.String() {
		t.Errorf("invalid site: got %+v, want the problem %+v", rej, wantProblem)
	}
	site, _ := fs.ReadFile(templates.FS, "examples/cluster.yaml")
	if code, body := do("PUT", "/api/v1/site", string(site)); code != 200 {
		t.Fatalf("PUT site: %d %s", code, body)
	}
	for _, n := range []struct{ host, body string }{
		{"bai-a01", `{"macs": ["52:54:00:20:30:20"], "role": "agent"}`},
		{"bai-extra", `{"macs": ["52:54:00:99:00:01"], "role": "agent", "ip": "10.20.30.99"}`},
	} {
		if code, body := do("PUT", "/api/v1/nodes/"+n.host, n.body); code != 200 {
			t.Fatalf("PUT node %s: %d %s", n.host, code, body)
		}
	}
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}

	s, err := spec.Parse("cluster.yaml", site)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.Node(s, &s.Nodes[1])
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string][]byte{"user-data": want.UserData, "meta-data": want.MetaData, "network-config": want.NetworkConfig} {
		if got := get("/nocloud/52-54-00-20-30-20/" + name); got != string(w) {
			t.Errorf("%s served for bai-a01 differs from bainode render's", name)
		}
	}
	// cloud-init asks for gzip: what it decodes is the same bytes.
	req, _ := http.NewRequest("GET", srv.URL+"/nocloud/bai-a01/user-data", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	zipped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || gunzip(t, zipped) != string(want.UserData) {
		t.Errorf("gzipped user-data for bai-a01 (encoding %q) does not decode to bainode render's", resp.Header.Get("Content-Encoding"))
	}
	vd := get("/nocloud/bai-a01/vendor-data")
	if !strings.HasPrefix(vd, "#cloud-config\n") || !strings.Contains(vd, "type: webhook") || !strings.Contains(vd, "/phone-home/bai-a01/") {
		t.Errorf("vendor-data does not report progress:\n%s", vd)
	}

	// An agent only in the inventory inherits the site's agent role (GPU on).
	extra := get("/nocloud/bai-extra/user-data")
	if !strings.Contains(extra, "hostname: \"bai-extra\"\n") || !strings.Contains(extra, "GPU=1") {
		t.Errorf("a node only in the inventory should be rendered as an agent of the site:\n%.400s", extra)
	}

	// A valid site that takes bai-extra's IP cannot render bai-extra: the
	// problem names the node and the field, but no line, which would be
	// one of the merged site and not of the pushed file; the site's
	// warnings (no gateway) are left out.
	dup := string(site) + "  - hostname: bai-dup\n    role: agent\n    ip: 10.20.30.99/24\n    gateway: 10.20.30.1\n"
	code, body = do("PUT", "/api/v1/site", dup)
	rej := rejection(t, code, body)
	if len(rej.Problems) == 0 || !strings.Contains(rej.Error, "render failed: node bai-extra: ") {
		t.Fatalf("site taking bai-extra's IP: %+v", rej)
	}
	for _, p := range rej.Problems {
		if p.File != "" || p.Line != 0 || !strings.HasPrefix(p.Msg, "rendering node bai-extra: ") || p.Severity != spec.SeverityError || !strings.HasPrefix(p.Path, "nodes[") {
			t.Errorf("render problem %+v: want the node in the message, a field and no position", p)
		}
	}
	t.Logf("render problems: %+v", rej.Problems)

	// A node the stored site cannot render is refused the same way, and
	// not stored.
	code, body = do("PUT", "/api/v1/nodes/bai-dup2", `{"macs": ["52:54:00:99:00:02"], "role": "agent", "ip": "10.20.30.20"}`)
	rej = rejection(t, code, body)
	if len(rej.Problems) == 0 || !strings.HasPrefix(rej.Problems[0].Msg, "rendering node bai-dup2: ") || rej.Problems[0].Path == "" {
		t.Errorf("node that cannot render: %+v", rej)
	}
	if code, _ := do("GET", "/api/v1/nodes/bai-dup2", ""); code != http.StatusNotFound {
		t.Errorf("a node refused for rendering was stored: GET gives %d", code)
	}
}

// rejectionOf decodes a 400 answer in the problems media type.
func rejectionOf(t *testing.T, resp *http.Response) (r struct {
	Error    string         `json:"error"`
	Problems []spec.Problem `json:"problems"`
}) {
	t.Helper()
	body := readAll(resp)
	if ct := resp.Header.Get("Content-Type"); ct != spec.ProblemsMediaType {
		t.Fatalf("rejection's Content-Type %q, want %s (body %q)", ct, spec.ProblemsMediaType, body)
	}
	return rejection(t, resp.StatusCode, body)
}

// rejection decodes a 400 answer to a site.
func rejection(t *testing.T, code int, body string) (r struct {
	Error    string         `json:"error"`
	Problems []spec.Problem `json:"problems"`
}) {
	t.Helper()
	if code != http.StatusBadRequest {
		t.Fatalf("got %d %s, want 400", code, body)
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("400 answer %q: %v", body, err)
	}
	return r
}
