package fleet_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/fleet"
	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/builder/spec"
)

const adminToken = "fleet-test-admin-token-0123456789"

// server is bainoded's real handler on a memory inventory. Its renderer
// accepts anything but a node whose overrides say "fail".
func server(t *testing.T) (*httptest.Server, *inventory.Memory) {
	t.Helper()
	store := inventory.NewMemory()
	if err := store.PutAdminToken(context.Background(), inventory.HashToken(adminToken)); err != nil {
		t.Fatal(err)
	}
	render := serve.RendererFunc(func(site []byte, n inventory.Node, u serve.URLs) (serve.Files, error) {
		if string(n.Overrides) == "fail" {
			return serve.Files{}, errors.New("overrides say fail")
		}
		return serve.Files{UserData: []byte("#cloud-config\n"), MetaData: []byte("instance-id: " + n.Hostname + "\n")}, nil
	})
	validate := func(site []byte) error {
		if strings.Contains(string(site), "bad") {
			return errors.New("site.yaml:1:1: bad is not a key\nsite.yaml:2:3: nor is this")
		}
		return nil
	}
	srv := httptest.NewServer(serve.New(serve.Config{Store: store, Renderer: render, Validator: validate}))
	t.Cleanup(srv.Close)
	return srv, store
}

func TestClient(t *testing.T) {
	srv, store := server(t)
	ctx := context.Background()
	c := &fleet.Client{BaseURL: srv.URL + "/", Token: adminToken}

	if _, err := c.PushSite(ctx, []byte("bad: 1\n")); fleet.StatusCode(err) != 400 ||
		!strings.HasSuffix(err.Error(), ": 400 Bad Request:\nsite.yaml:1:1: bad is not a key\nsite.yaml:2:3: nor is this") {
		t.Errorf("bad site: %v", err)
	}
	v, err := c.PushSite(ctx, []byte("version: 1\n"))
	if err != nil || v.ID != 1 || v.Created.IsZero() {
		t.Fatalf("push site: %+v %v", v, err)
	}
	if b, id, err := c.Site(ctx); err != nil || id != 1 || string(b) != "version: 1\n" {
		t.Errorf("site: %q %d %v", b, id, err)
	}

	n, err := c.PutNode(ctx, fleet.Node{Hostname: "gpu1", MACs: []string{"52-54-00-00-00-01"}, Role: "agent", Token: "ignored"})
	if err != nil || n.MACs[0] != "52:54:00:00:00:01" || n.Token == "" {
		t.Fatalf("put node: %+v %v", n, err)
	}
	if _, err := c.PutNode(ctx, fleet.Node{Hostname: "gpu2", Overrides: "fail"}); fleet.StatusCode(err) != 400 {
		t.Errorf("unrenderable node: %v", err)
	}
	if _, err := c.PutNode(ctx, fleet.Node{Hostname: "gpu3", MACs: []string{"52:54:00:00:00:01"}}); fleet.StatusCode(err) != 409 ||
		err.Error() != "PUT /api/v1/nodes/gpu3: 409 Conflict: a mac of this node is registered to another node" {
		t.Errorf("mac conflict: %v", err)
	}
	if _, err := c.PutNode(ctx, fleet.Node{Hostname: "../x"}); err == nil {
		t.Errorf("hostname with a slash accepted")
	}
	if nodes, err := c.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].Hostname != "gpu1" || nodes[0].Token != "" {
		t.Errorf("nodes: %+v %v", nodes, err)
	}
	if got, err := c.Node(ctx, "gpu1"); err != nil || got.Role != "agent" {
		t.Errorf("node: %+v %v", got, err)
	}
	if _, err := c.Node(ctx, "nosuch"); !fleet.IsNotFound(err) {
		t.Errorf("missing node: %v", err)
	}

	st, err := c.Status(ctx)
	if err != nil || len(st) != 1 || st[0].Node != "gpu1" || st[0].Result != "pending" || st[0].Role != "agent" {
		t.Errorf("status before reports: %+v %v", st, err)
	}
	resp, err := http.PostForm(srv.URL+"/phone-home/gpu1/"+n.Token, url.Values{"hostname": {"gpu1"}})
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("phone home: %v %v", resp, err)
	}
	resp.Body.Close()
	ev, err := c.Events(ctx, "gpu1", 0)
	if err != nil || len(ev) != 1 || ev[0].Stage != "phone-home" || ev[0].Result != "done" || ev[0].Detail != "hostname=gpu1" {
		t.Errorf("events: %+v %v", ev, err)
	}
	if st, err := c.Status(ctx); err != nil || st[0].Stage != "phone-home" || st[0].Time.IsZero() {
		t.Errorf("status after phone home: %+v %v", st, err)
	}

	if err := c.DeleteNode(ctx, "gpu1"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := c.DeleteNode(ctx, "gpu1"); !fleet.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := c.Members(ctx); !fleet.IsNotFound(err) { // a memory store is no cluster
		t.Errorf("members of a memory store: %v", err)
	}
	if _, err := store.Node(ctx, "gpu1"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("node still stored: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	srv, _ := server(t)
	ctx := context.Background()

	wrong := &fleet.Client{BaseURL: srv.URL, Token: "wrong-secret-token-0123456789"}
	_, err := wrong.Nodes(ctx)
	if fleet.StatusCode(err) != 401 || err.Error() != "GET /api/v1/nodes: 401 Unauthorized: admin token required" {
		t.Errorf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), wrong.Token) {
		t.Errorf("error shows the token: %v", err)
	}

	down := &fleet.Client{BaseURL: "http://127.0.0.1:1", Token: adminToken}
	_, err = down.Status(ctx)
	if err == nil || !strings.Contains(err.Error(), "cannot reach bainoded") || strings.Contains(err.Error(), adminToken) {
		t.Errorf("server down: %v", err)
	}

	notAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
	defer notAPI.Close()
	_, err = (&fleet.Client{BaseURL: notAPI.URL, Token: adminToken}).Nodes(ctx)
	if err == nil || !strings.Contains(err.Error(), "is "+notAPI.URL+" a bainoded?") {
		t.Errorf("not an API: %v", err)
	}
}

func TestBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.0.1:8080":        "http://10.0.0.1:8080",
		"http://10.0.0.1:8080/":       "http://10.0.0.1:8080",
		"10.0.0.1:8080":               "http://10.0.0.1:8080",
		"https://seed.example/fleet/": "https://seed.example/fleet",
		" http://[::1]:8080 ":         "http://[::1]:8080",
	} {
		if got, err := (&fleet.Client{BaseURL: in}).Base(); err != nil || got != want {
			t.Errorf("Base(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ftp://x", "http://", "http://user:pw@x", "http://x/?q=1", "http://x/#f"} {
		if got, err := (&fleet.Client{BaseURL: in}).Base(); err == nil {
			t.Errorf("Base(%q) = %q, want an error", in, got)
		}
	}
}

func TestClientTokens(t *testing.T) {
	srv, _ := server(t)
	ctx := context.Background()
	c := &fleet.Client{BaseURL: srv.URL, Token: adminToken}
	if _, err := c.PushSite(ctx, []byte("version: 1\n")); err != nil {
		t.Fatal(err)
	}
	n, err := c.PutNode(ctx, fleet.Node{Hostname: "gpu1", TokenRevoked: true})
	if err != nil {
		t.Fatal(err)
	}
	phone := func(token string) int {
		resp, err := http.PostForm(srv.URL+"/phone-home/gpu1/"+token, url.Values{"hostname": {"gpu1"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	r, err := c.RotateNodeToken(ctx, "gpu1")
	if err != nil || r.Token == "" || r.Token == n.Token || r.Hostname != "gpu1" {
		t.Fatalf("rotate: %+v %v", r, err)
	}
	if phone(n.Token) != 403 || phone(r.Token) != 204 {
		t.Errorf("after rotation the old token should fail and the new one work")
	}
	if err := c.RevokeNodeToken(ctx, "gpu1"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Node(ctx, "gpu1"); err != nil || !got.TokenRevoked || phone(r.Token) != 403 {
		t.Errorf("after revocation: %+v %v", got, err)
	}
	if _, err := c.RotateNodeToken(ctx, "ghost"); !fleet.IsNotFound(err) {
		t.Errorf("rotate unknown node: %v", err)
	}
	if err := c.RevokeNodeToken(ctx, "ghost"); !fleet.IsNotFound(err) {
		t.Errorf("revoke unknown node: %v", err)
	}

	list, err := c.AdminTokens(ctx)
	if err != nil || len(list) != 1 || !list[0].Current || len(list[0].Prefix) != 12 || list[0].Token != "" {
		t.Fatalf("list: %+v %v", list, err)
	}
	ci, err := c.CreateAdminToken(ctx, "ci")
	if err != nil || ci.Token == "" || ci.Name != "ci" {
		t.Fatalf("create: %+v %v", ci, err)
	}
	if _, err := c.CreateAdminToken(ctx, ""); fleet.StatusCode(err) != 400 {
		t.Errorf("create without a name: %v", err)
	}
	other := &fleet.Client{BaseURL: srv.URL, Token: ci.Token}
	err = other.RevokeAdminToken(ctx, ci.ID)
	if fleet.StatusCode(err) != 409 || !strings.Contains(err.Error(), "cannot revoke itself") || strings.Contains(err.Error(), ci.Token) {
		t.Errorf("self-revoke: %v", err)
	}
	if err := c.RevokeAdminToken(ctx, ci.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Nodes(ctx); fleet.StatusCode(err) != 401 {
		t.Errorf("revoked token: %v", err)
	}
	if err := c.RevokeAdminToken(ctx, ci.ID); !fleet.IsNotFound(err) {
		t.Errorf("second revoke: %v", err)
	}
}

func TestBaseUnix(t *testing.T) {
	c := &fleet.Client{BaseURL: "unix:/run/bainoded/admin.sock"}
	if b, err := c.Base(); err != nil || b != "http://bainoded" {
		t.Errorf("Base: %q %v", b, err)
	}
	if _, err := (&fleet.Client{BaseURL: "unix:"}).Base(); err == nil || !strings.Contains(err.Error(), "needs a socket path") {
		t.Errorf("unix: without a path: %v", err)
	}
}

// A site bainoded's real validator rejects comes back as its problems, one
// by one, and as the same text; other errors stay text with no problems.
func TestPushSiteProblems(t *testing.T) {
	store := inventory.NewMemory()
	if err := store.PutAdminToken(context.Background(), inventory.HashToken(adminToken)); err != nil {
		t.Fatal(err)
	}
	render := serve.RendererFunc(func([]byte, inventory.Node, serve.URLs) (serve.Files, error) {
		return serve.Files{UserData: []byte("#cloud-config\n")}, nil
	})
	srv := httptest.NewServer(serve.New(serve.Config{Store: store, Renderer: render, Validator: serve.ValidateSite}))
	defer srv.Close()
	c := &fleet.Client{BaseURL: srv.URL, Token: adminToken}

	_, err := c.PushSite(context.Background(), []byte("version: 1\nnodes:\n  - hostname: a\n    ip: 10.0.0.300\n    rolee: agent\n"))
	var ae *fleet.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad site: %v", err)
	}
	want := []spec.Problem{
		{File: "site.yaml", Line: 4, Column: 9, Path: "nodes[0].ip", Msg: `"10.0.0.300" is not an IPv4 address`},
		{File: "site.yaml", Line: 5, Column: 5, Path: "nodes[0].rolee", Msg: `unknown key (did you mean "role"?)`},
	}
	if !slices.Equal(ae.Problems, want) {
		t.Errorf("problems:\n got %+v\nwant %+v", ae.Problems, want)
	}
	if ae.Message != want[0].String()+"\n"+want[1].String() {
		t.Errorf("message %q: want the problems' text", ae.Message)
	}
	if _, err := store.Site(context.Background()); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("a rejected site was stored: %v", err)
	}

	_, err = c.Node(context.Background(), "nosuch")
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || ae.Message == "" || ae.Problems != nil {
		t.Errorf("a text error: %+v", err)
	}
}
