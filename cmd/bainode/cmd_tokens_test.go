package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFleetTokens(t *testing.T) {
	f := newFleetServer(t)
	ctx := context.Background()

	if out := f.ok("tokens", "list"); !strings.Contains(out, "(token file)") || !strings.Contains(out, "(this token)") {
		t.Errorf("tokens list:\n%s", out)
	}
	r := f.run(f.authEnv(), "tokens", "add", "ci")
	ci := strings.TrimSpace(r.stdout)
	if r.code != 0 || len(ci) < 32 || strings.Contains(ci, " ") || !strings.Contains(r.stderr, "not shown again") ||
		strings.Contains(r.stderr, ci) {
		t.Fatalf("tokens add: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	ciEnv := []string{"BAINODE_SERVER=" + f.url, "BAINODE_TOKEN=" + ci}
	if r := f.run(ciEnv, "tokens", "list"); r.code != 0 || !strings.Contains(r.stdout, "ci") ||
		!strings.Contains(r.stdout, "(this token)") || strings.Contains(r.stdout, ci) {
		t.Errorf("tokens list with the new token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	f.fail(2, []string{"exactly one NAME"}, "tokens", "add")

	file := filepath.Join(t.TempDir(), "ops.token")
	r = f.run(f.authEnv(), "tokens", "add", "ops", "--output", file)
	b, err := os.ReadFile(file)
	fi, _ := os.Stat(file)
	if r.code != 0 || r.stdout != "" || err != nil || len(strings.TrimSpace(string(b))) < 32 || fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens add --output: exit %d %q %q; file %q %v", r.code, r.stdout, r.stderr, b, err)
	}
	f.fail(2, []string{"exists"}, "tokens", "add", "ops2", "--output", file)
	if r := f.run([]string{"BAINODE_SERVER=" + f.url}, "tokens", "list", "--token-file", file); r.code != 0 {
		t.Errorf("token from --output: exit %d %s", r.code, r.stderr)
	}

	// IDs: 1 is the server's token, 2 ci, 3 ops.
	f.fail(1, []string{"cannot revoke itself"}, "tokens", "rm", "1")
	if out := f.ok("tokens", "rm", "2"); !strings.Contains(out, "admin token 2 revoked") {
		t.Errorf("tokens rm: %q", out)
	}
	if r := f.run(ciEnv, "tokens", "list"); r.code != 1 || !strings.Contains(r.stderr, "revoked") {
		t.Errorf("revoked token: exit %d %s", r.code, r.stderr)
	}
	f.fail(1, []string{"admin token 2: not found"}, "tokens", "rm", "2")
	f.fail(2, []string{"not a number"}, "tokens", "rm", "two")

	f.ok("nodes", "add", "gpu1", "--mac", "52:54:00:00:00:01")
	before, _ := f.store.Node(ctx, "gpu1")
	if out := f.ok("nodes", "token", "rotate", "gpu1"); !strings.Contains(out, "token rotated") {
		t.Errorf("rotate: %q", out)
	}
	after, _ := f.store.Node(ctx, "gpu1")
	if after.TokenGen != before.TokenGen+1 || after.TokenHash == before.TokenHash || after.TokenHash == "" {
		t.Errorf("rotate: node %+v, was %+v", after, before)
	}
	f.report("gpu1", "phone-home", "application/x-www-form-urlencoded", "hostname=gpu1") // the new token works
	if out := f.ok("nodes", "token", "revoke", "gpu1"); !strings.Contains(out, "token revoked") {
		t.Errorf("revoke: %q", out)
	}
	if out := f.ok("nodes", "show", "gpu1"); !strings.Contains(out, "token:     revoked") {
		t.Errorf("show after revoke:\n%s", out)
	}
	f.fail(1, []string{"node ghost: not found"}, "nodes", "token", "rotate", "ghost")
	f.fail(2, []string{"exactly one HOSTNAME"}, "nodes", "token", "revoke")
}
