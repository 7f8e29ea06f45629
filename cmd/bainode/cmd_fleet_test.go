package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/fleet"
	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/templates"
)

// TestFleetNoCgo keeps bainode free of dqlite and cgo: the fleet commands
// reach bainoded over HTTP only.
func TestFleetNoCgo(t *testing.T) {
	for _, args := range [][]string{
		{"list", "-deps", "./cmd/bainode"},
		{"list", "-deps", "-test", "./cmd/bainode", "./builder/fleet"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %v: %v", args, err)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if strings.Contains(pkg, "go-dqlite") || strings.Contains(pkg, "go-sqlite3") ||
				strings.HasSuffix(pkg, "/inventory/dqlite") {
				t.Errorf("go %v lists %s: bainode must stay pure Go", args, pkg)
			}
		}
	}
	// The whole package set builds without cgo, and so do the tests (vet
	// type-checks them).
	for _, args := range [][]string{
		{"build", "-o", t.TempDir() + "/", "./cmd/bainode", "./builder/fleet"},
		{"vet", "./cmd/bainode", "./builder/fleet"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("CGO_ENABLED=0 go %v: %v\n%s", args, err, out)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// fleetBinary is the bainode that cli_test.go's TestMain builds with
// CGO_ENABLED=0, as users get it.
func fleetBinary(t *testing.T) string {
	t.Helper()
	if bainodeBin == "" {
		t.Fatal("bainode was not built by TestMain")
	}
	return bainodeBin
}

// fleetServer is bainoded's HTTP surface on a memory inventory, on 127.0.0.1.
type fleetServer struct {
	t     *testing.T
	url   string
	token string
	store *inventory.Memory
	env   []string // BAINODE_* cleared
}

const fleetToken = "fleet-admin-token-DO-NOT-PRINT-0123456789"

func newFleetServer(t *testing.T) *fleetServer {
	t.Helper()
	store := inventory.NewMemory()
	if err := store.PutAdminToken(context.Background(), inventory.HashToken(fleetToken)); err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(serve.New(serve.Config{Store: store, Renderer: serve.SiteRenderer(r),
		Validator: serve.ValidateSite, BaseURL: "http://10.0.2.100"}))
	t.Cleanup(srv.Close)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BAINODE_") {
			env = append(env, kv)
		}
	}
	return &fleetServer{t: t, url: srv.URL, token: fleetToken, store: store, env: env}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs bainode with env added to a clean environment; the token never
// may appear in its output, whatever happens.
func (f *fleetServer) run(env []string, args ...string) result {
	f.t.Helper()
	cmd := exec.Command(fleetBinary(f.t), args...)
	cmd.Env = append(append([]string(nil), f.env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out.String(), errb.String(), 0}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		f.t.Fatal(err)
	}
	if strings.Contains(r.stdout+r.stderr, f.token) {
		f.t.Errorf("bainode %v printed the admin token:\n%s%s", args, r.stdout, r.stderr)
	}
	return r
}

// ok runs with the server and token in the environment and wants exit 0.
func (f *fleetServer) ok(args ...string) string {
	f.t.Helper()
	r := f.run(f.authEnv(), args...)
	if r.code != 0 {
		f.t.Fatalf("bainode %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fail wants exit code and stderr containing each of want.
func (f *fleetServer) fail(code int, want []string, args ...string) result {
	f.t.Helper()
	r := f.run(f.authEnv(), args...)
	if r.code != code {
		f.t.Errorf("bainode %v: exit %d, want %d\n%s%s", args, r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			f.t.Errorf("bainode %v: stderr lacks %q:\n%s", args, w, r.stderr)
		}
	}
	return r
}

func (f *fleetServer) authEnv() []string {
	return []string{"BAINODE_SERVER=" + f.url, "BAINODE_TOKEN=" + f.token}
}

// report posts what cloud-init (reporting webhook) or phone_home would.
func (f *fleetServer) report(host, path, ctype, body string) {
	f.t.Helper()
	key, err := f.store.Secret(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	n, err := f.store.Node(context.Background(), host)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.Post(f.url+"/"+path+"/"+host+"/"+inventory.NodeToken(key, host, n.TokenGen), ctype, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		f.t.Fatalf("POST %s for %s: %d", path, host, resp.StatusCode)
	}
}

func TestFleetCommands(t *testing.T) {
	f := newFleetServer(t)
	dir := t.TempDir()

	if out := f.ok("status"); !strings.Contains(out, "no nodes registered") {
		t.Errorf("status of an empty fleet:\n%s", out)
	}

	// A bad site: the server's file:line:col problems, named after the
	// pushed file, exit 2, nothing stored.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nname: x\ntarget: debian-12\nnodes:\n  - hostname: a\n    rolee: agent\n"), 0o644)
	r := f.fail(2, []string{"bainoded rejected " + bad, bad + ":6:5:", "rolee"}, "site", "push", bad)
	t.Logf("site push %s:\n%s", bad, r.stderr)
	if strings.Contains(r.stderr, "site.yaml:") {
		t.Errorf("site push kept the server's file name:\n%s", r.stderr)
	}
	if _, err := f.store.Site(context.Background()); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("a rejected site was stored: %v", err)
	}

	site := filepath.Join(dir, "site.yaml")
	b, err := fs.ReadFile(templates.FS, "examples/vm-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(site, b, 0o644)
	if out := f.ok("site", "push", site); !strings.Contains(out, "site version 1 stored") {
		t.Errorf("site push: %q", out)
	}

	// Flags after the hostname, MACs in any notation.
	f.ok("nodes", "add", "bai-vm", "--mac", "52-54-00-12-34-56", "--role", "all-in-one", "--ip", "10.0.2.15")
	f.fail(1, []string{"node bai-vm already exists", "--replace"}, "nodes", "add", "bai-vm", "--mac", "52:54:00:12:34:56")
	f.fail(1, []string{"409 Conflict", "a mac of this node is registered to another node"},
		"nodes", "add", "gpu2", "--mac", "52:54:00:12:34:56")
	f.fail(1, []string{"400 Bad Request", "invalid mac"}, "nodes", "add", "gpu2", "--mac", "nope")
	ov := filepath.Join(dir, "gpu2.yaml")
	os.WriteFile(ov, []byte("ip: not-an-address\n"), 0o644)
	// A node the site cannot render: the problem by field, exit 2.
	f.fail(2, []string{"bainoded rejected node gpu2 (nothing was stored):", "nodes[1].ip: rendering node gpu2: \"not-an-address\" is not an IPv4 address"},
		"nodes", "add", "--overrides", ov, "gpu2")
	os.WriteFile(ov, []byte("aliases: [gpu2-data]\n"), 0o644)
	if out := f.ok("nodes", "add", "--overrides", ov, "gpu2", "--mac", "52:54:00:00:00:02", "--mac", "AABB.CCDD.EEFF"); !strings.Contains(out, "node gpu2 saved (mac 52:54:00:00:00:02, aa:bb:cc:dd:ee:ff)") {
		t.Errorf("nodes add: %q", out)
	}
	f.ok("nodes", "add", "gpu2", "--replace", "--mac", "52:54:00:00:00:02", "--overrides", ov, "--role", "agent")

	out := f.ok("nodes", "list")
	t.Logf("nodes list:\n%s", out)
	for _, want := range []string{"HOSTNAME", "bai-vm", "all-in-one", "10.0.2.15", "52:54:00:12:34:56", "gpu2", "agent"} {
		if !strings.Contains(out, want) {
			t.Errorf("nodes list lacks %q:\n%s", want, out)
		}
	}
	var nodes []fleet.Node
	if err := json.Unmarshal([]byte(f.ok("nodes", "list", "--json")), &nodes); err != nil || len(nodes) != 2 ||
		nodes[1].Hostname != "gpu2" || nodes[1].Overrides != "aliases: [gpu2-data]\n" {
		t.Errorf("nodes list --json: %v %+v", err, nodes)
	}

	if out := f.ok("nodes", "show", "bai-vm"); !strings.Contains(out, "none (the node has not reported)") {
		t.Errorf("nodes show before any report:\n%s", out)
	}
	// What a booting node sends.
	for _, ev := range []string{
		`{"name": "init-network", "event_type": "finish", "result": "SUCCESS", "description": "searching for network datasources"}`,
		`{"name": "modules-final", "event_type": "start", "description": "running modules for final"}`,
		`{"name": "modules-final/config-phone_home", "event_type": "start", "description": "running config-phone_home"}`,
	} {
		f.report("bai-vm", "report", "application/json", ev)
	}
	f.report("bai-vm", "phone-home", "application/x-www-form-urlencoded",
		url.Values{"instance_id": {"bai-vm"}, "hostname": {"bai-vm"}}.Encode())
	f.report("bai-vm", "report", "application/json", `{"name": "modules-final", "event_type": "finish", "result": "SUCCESS", "description": "running modules for final"}`)

	out = f.ok("nodes", "show", "bai-vm", "--events", "3")
	t.Logf("nodes show bai-vm --events 3:\n%s", out)
	for _, want := range []string{"hostname:  bai-vm", "role:      all-in-one", "macs:      52:54:00:12:34:56",
		"events (last 3, oldest first)", "modules-final/config-phone_home", "phone-home", "instance_id=bai-vm", "success"} {
		if !strings.Contains(out, want) {
			t.Errorf("nodes show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "init-network") {
		t.Errorf("nodes show --events 3 shows the 5th-last event:\n%s", out)
	}
	if out := f.ok("nodes", "show", "gpu2"); !strings.Contains(out, "overrides: |\n  aliases: [gpu2-data]\n") {
		t.Errorf("nodes show gpu2:\n%s", out)
	}
	f.fail(1, []string{"node nosuch: not found"}, "nodes", "show", "nosuch")

	out = f.ok("status")
	t.Logf("status:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "NODE STAGE EVENT AGE RESULT" {
		t.Fatalf("status:\n%s", out)
	}
	if got := strings.Fields(lines[1]); len(got) != 5 || got[0] != "bai-vm" || got[1] != "modules-final" ||
		got[2] != "modules-final" || got[4] != "success" || !strings.HasSuffix(got[3], "s") {
		t.Errorf("status line of bai-vm: %q", lines[1])
	}
	if got := strings.Fields(lines[2]); len(got) != 5 || got[0] != "gpu2" || got[1] != "-" || got[4] != "pending" {
		t.Errorf("status line of gpu2: %q", lines[2])
	}
	if lines[3] != "2 node(s): 1 success, 1 pending" {
		t.Errorf("status summary: %q", lines[3])
	}
	var st []fleet.NodeStatus
	if err := json.Unmarshal([]byte(f.ok("status", "--json")), &st); err != nil || len(st) != 2 || st[0].Stage != "modules-final" {
		t.Errorf("status --json: %v %+v", err, st)
	}

	if out := f.ok("nodes", "rm", "gpu2"); out != "node gpu2 removed\n" {
		t.Errorf("nodes rm: %q", out)
	}
	f.fail(1, []string{"node gpu2: not found", "node other: not found"}, "nodes", "rm", "gpu2", "other")
	// A removed node's MAC is free again.
	f.ok("nodes", "add", "gpu3", "--mac", "52:54:00:00:00:02")
}

func TestFleetAuth(t *testing.T) {
	f := newFleetServer(t)
	server := "BAINODE_SERVER=" + f.url
	dir := t.TempDir()
	good := filepath.Join(dir, "admin.token")
	os.WriteFile(good, []byte(f.token+"\n"), 0o600)
	wrong := filepath.Join(dir, "wrong.token")
	os.WriteFile(wrong, []byte("not-the-admin-token-0123456789\n"), 0o600)
	empty := filepath.Join(dir, "empty.token")
	os.WriteFile(empty, []byte("\n"), 0o600)

	for _, c := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"token file", []string{server}, []string{"nodes", "list", "--token-file", good}, 0, ""},
		{"token flag", nil, []string{"nodes", "list", "--server", f.url, "--token", f.token}, 0, ""},
		{"env token", []string{server, "BAINODE_TOKEN=" + f.token}, []string{"nodes", "list"}, 0, ""},
		{"server without scheme", []string{"BAINODE_TOKEN=" + f.token}, []string{"status", "-s", strings.TrimPrefix(f.url, "http://")}, 0, ""},
		{"file beats env", []string{server, "BAINODE_TOKEN=wrong-token-0123456789"}, []string{"status", "--token-file", good}, 0, ""},
		{"wrong token", []string{server}, []string{"nodes", "list", "--token-file", wrong}, 1,
			"GET /api/v1/nodes: 401 Unauthorized: admin token required (check the admin token"},
		{"wrong env token", []string{server, "BAINODE_TOKEN=wrong-token-0123456789"}, []string{"site", "push", good}, 1, "401 Unauthorized"},
		{"no token", []string{server}, []string{"status"}, 2, "no admin token"},
		{"empty token file", []string{server}, []string{"status", "--token-file", empty}, 2, "is empty"},
		{"missing token file", []string{server}, []string{"status", "--token-file", filepath.Join(dir, "nope")}, 2, "no such file"},
		{"both", []string{server}, []string{"status", "--token", f.token, "--token-file", good}, 2, "exclusive"},
		{"bad server", nil, []string{"status", "--server", "ftp://x", "--token", f.token}, 2, "scheme must be http or https"},
		{"server down", nil, []string{"status", "--server", "http://127.0.0.1:1", "--token", f.token}, 1, "cannot reach bainoded"},
		{"bad flag", []string{server}, []string{"nodes", "add", "x", "--nope"}, 2, "flag provided but not defined: --nope"},
		{"extra args", []string{server}, []string{"nodes", "show", "a", "b", "--token", f.token}, 2, "exactly one HOSTNAME"},
	} {
		r := f.run(c.env, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: bainode %v: exit %d, stderr %q; want %d and %q", c.name, c.args, r.code, r.stderr, c.code, c.want)
		}
	}

	// --help must not show a token taken from the environment or the
	// command line as a "default".
	r := f.run([]string{"BAINODE_TOKEN=" + f.token}, "status", "--token", f.token, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--token-file") {
		t.Errorf("status --help: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestFleetStatusWatch(t *testing.T) {
	f := newFleetServer(t)
	cmd := exec.Command(fleetBinary(t), "status", "--watch", "--interval", "200ms")
	cmd.Env = append(append([]string(nil), f.env...), f.authEnv()...)
	var out fleetSyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill() // by pid; a no-op once it exited

	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("status --watch: no %s in 30s:\n%s", what, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("first table", func(s string) bool { return strings.Contains(s, "no nodes registered") })
	// A node registered meanwhile shows up in a later redraw.
	if err := f.store.PutNode(context.Background(), inventory.Node{Hostname: "late1"}); err != nil {
		t.Fatal(err)
	}
	waitFor("redraw with the new node", func(s string) bool { return strings.Contains(s, "late1") })
	if n := strings.Count(out.String(), "(^C to stop)"); n < 2 {
		t.Errorf("%d redraws", n)
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("status --watch after ^C: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("status --watch ignored SIGINT")
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Errorf("escape sequences written to a pipe")
	}
}

type fleetSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *fleetSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *fleetSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// site push names the problems the server sends after the file it read
// (stdin for -), including a node of the inventory the site cannot render.
func TestFleetSitePushProblems(t *testing.T) {
	f := newFleetServer(t)
	push := func(stdin string, args ...string) result {
		t.Helper()
		cmd := exec.Command(fleetBinary(t), append([]string{"site", "push"}, args...)...)
		cmd.Env = append(append([]string(nil), f.env...), f.authEnv()...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		r := result{out.String(), errb.String(), 0}
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bad := "version: 1\nname: x\ntarget: debian-12\nnodes:\n  - hostname: a\n    rolee: agent\n"
	if r := push(bad, "-"); r.code != 2 || !strings.Contains(r.stderr, "bainoded rejected stdin (nothing was stored):\nstdin:6:5: nodes[0].rolee: unknown key") {
		t.Errorf("site push - of a bad site: exit %d\n%s", r.code, r.stderr)
	}

	site, err := fs.ReadFile(templates.FS, "examples/vm-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := push(string(site), "-"); r.code != 0 || !strings.Contains(r.stdout, "(stdin, ") {
		t.Fatalf("site push -: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	f.ok("nodes", "add", "extra", "--mac", "52:54:00:00:00:09", "--ip", "10.0.2.20", "--role", "agent")
	// A valid site whose own node takes the inventory node's IP.
	taken := filepath.Join(t.TempDir(), "taken.yaml")
	os.WriteFile(taken, append(site, "  - hostname: extra2\n    role: agent\n    ip: 10.0.2.20/24\n"...), 0o644)
	r := push("", taken)
	t.Logf("site push %s:\n%s", taken, r.stderr)
	if r.code != 2 || !strings.Contains(r.stderr, taken+": nodes[2].ip: rendering node extra: 10.0.2.20 is also nodes[1]") {
		t.Errorf("site push of a site that cannot render node extra: exit %d\n%s", r.code, r.stderr)
	}
	// nodes add of a node the stored site cannot render: the problems, by
	// field, exit 2, nothing stored.
	os.WriteFile(taken, append(site, "  - hostname: extra2\n    role: agent\n    ip: 10.0.2.30/24\n"...), 0o644)
	if r := push("", taken); r.code != 0 {
		t.Fatalf("site push %s: exit %d\n%s", taken, r.code, r.stderr)
	}
	r = f.fail(2, []string{"bainoded rejected node extra3 (nothing was stored):\nnode extra3: nodes[", "rendering node extra3: 10.0.2.30 is also"},
		"nodes", "add", "extra3", "--mac", "52:54:00:00:00:0a", "--ip", "10.0.2.30", "--role", "agent")
	t.Logf("nodes add extra3:\n%s", r.stderr)
	if _, err := f.store.Node(context.Background(), "extra3"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("a node refused for rendering was stored: %v", err)
	}
}
