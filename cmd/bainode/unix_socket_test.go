package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/templates"
)

// The fleet commands reach an admin API on a unix socket (bainoded
// --admin-listen unix:PATH) with --server unix:PATH or BAINODE_SERVER: the
// real admin handler on a real socket, the real binary.
func TestFleetUnixSocket(t *testing.T) {
	store := inventory.NewMemory()
	if err := store.PutAdminToken(context.Background(), inventory.HashToken(fleetToken)); err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, admin := serve.Handlers(serve.Config{Store: store, Renderer: serve.SiteRenderer(r),
		Validator: serve.ValidateSite, BaseURL: "http://10.0.2.100"})
	// Short: a socket path is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "bn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	f := &fleetServer{t: t, url: "unix:" + sock, token: fleetToken, store: store}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BAINODE_") {
			f.env = append(f.env, kv)
		}
	}
	site := filepath.Join(t.TempDir(), "site.yaml")
	b, _ := templates.FS.ReadFile("examples/vm-test.yaml")
	os.WriteFile(site, b, 0o644)
	if out := f.ok("site", "push", site); !strings.Contains(out, "site version 1 stored") {
		t.Errorf("site push over the socket: %q", out)
	}
	f.ok("nodes", "add", "bai-vm", "--mac", "52:54:00:12:34:56", "--role", "all-in-one")
	if out := f.ok("nodes", "list"); !strings.Contains(out, "bai-vm") {
		t.Errorf("nodes list over the socket:\n%s", out)
	}
	if out := f.ok("status"); !strings.Contains(out, "bai-vm") || !strings.Contains(out, "pending") {
		t.Errorf("status over the socket:\n%s", out)
	}
	// --server beats the environment, and a wrong token is the server's 401.
	if r := f.run([]string{"BAINODE_SERVER=http://127.0.0.1:1", "BAINODE_TOKEN=" + fleetToken}, "tokens", "list", "--server", "unix:"+sock); r.code != 0 {
		t.Errorf("tokens list --server unix:: exit %d\n%s", r.code, r.stderr)
	}
	f.fail(1, []string{"401"}, "nodes", "list", "--token", "wrong")
	// A socket that is not there is named in the error.
	gone := filepath.Join(dir, "gone.sock")
	if r := f.run([]string{"BAINODE_SERVER=unix:" + gone, "BAINODE_TOKEN=" + fleetToken}, "nodes", "list"); r.code != 1 || !strings.Contains(r.stderr, "cannot reach bainoded") || !strings.Contains(r.stderr, gone) {
		t.Errorf("missing socket: exit %d\n%s", r.code, r.stderr)
	}
	if r := f.run([]string{"BAINODE_TOKEN=" + fleetToken}, "nodes", "list", "--server", "unix:"); r.code != 2 || !strings.Contains(r.stderr, "unix: needs a socket path") {
		t.Errorf("--server unix:: exit %d\n%s", r.code, r.stderr)
	}
}
