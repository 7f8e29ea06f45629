//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/inventory/dqlite"
)

var reportToken = regexp.MustCompile(`endpoint: \S+/report/gpu1/(\S+)\n`)

// TestDaemonTokens runs node token rotation and admin token revocation on
// the real inventory, and checks that a revoked token file stops a start.
func TestDaemonTokens(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	tokFile := filepath.Join(data, "admin.token")
	addr, admin := freeAddr(t), freeAddr(t)
	d := startDaemon(t, "--data", data, "--listen", addr, "--admin-listen", admin)
	waitGet(t, http.DefaultClient, "http://"+addr+"/healthz").Body.Close()
	tok, _ := os.ReadFile(tokFile)
	c := &cluster{tb: t, token: strings.TrimSpace(string(tok)), client: http.DefaultClient}
	m := &member{name: "lone", http: addr, admin: admin}
	t0 := c.setup(m)

	served := func() string {
		t.Helper()
		code, body, err := c.do(m, "GET", "/nocloud/gpu1/vendor-data", "", "", "")
		match := reportToken.FindStringSubmatch(body)
		if err != nil || code != 200 || match == nil {
			t.Fatalf("vendor-data: %d %q %v", code, body, err)
		}
		return match[1]
	}
	if got := served(); got != t0 {
		t.Fatalf("vendor-data token %q, want the one PUT answered", got)
	}
	if code, body, err := c.do(m, "POST", "/api/v1/nodes/gpu1/token", c.token, "", ""); err != nil || code != 200 {
		t.Fatalf("rotate: %d %s %v", code, body, err)
	}
	if err := c.phoneHome(context.Background(), m, t0, "old"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("old token after rotation: %v, want 403", err)
	}
	t1 := served()
	if t1 == t0 {
		t.Fatalf("vendor-data still carries the old token")
	}
	if err := c.phoneHome(context.Background(), m, t1, "new"); err != nil {
		t.Errorf("new token from vendor-data: %v", err)
	}
	if code, _, _ := c.do(m, "DELETE", "/api/v1/nodes/gpu1/token", c.token, "", ""); code != 204 {
		t.Errorf("revoke: %d", code)
	}
	if err := c.phoneHome(context.Background(), m, t1, "revoked"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("revoked token: %v, want 403", err)
	}
	if code, _, _ := c.do(m, "POST", "/api/v1/nodes/ghost/token", c.token, "", ""); code != 404 {
		t.Errorf("rotate unknown node: %d, want 404", code)
	}

	// Revoke the file's token with a second one, then restart.
	code, body, err := c.do(m, "POST", "/api/v1/tokens", c.token, `{"name": "ops"}`, "application/json")
	var ops struct{ Token string }
	if err != nil || code != 201 || json.Unmarshal([]byte(body), &ops) != nil || ops.Token == "" {
		t.Fatalf("create token: %d %s %v", code, body, err)
	}
	code, body, _ = c.do(m, "GET", "/api/v1/tokens", ops.Token, "", "")
	var list []struct {
		ID   int64
		Name string
	}
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 2 || list[0].Name != "" {
		t.Fatalf("list tokens: %d %s", code, body)
	}
	if code, body, _ := c.do(m, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", list[0].ID), ops.Token, "", ""); code != 204 {
		t.Fatalf("revoke the file token: %d %s", code, body)
	}
	if strings.Contains(d.out.String(), ops.Token) || strings.Contains(d.out.String(), c.token) {
		t.Errorf("a token reached the log:\n%s", d.out)
	}
	if err := d.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	out, err := exec.Command(binary, "--data", data, "--listen", freeAddr(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), tokFile+": this admin token was revoked") ||
		!strings.Contains(string(out), "write a new token") {
		t.Errorf("start with a revoked token file: %v\n%s", err, out)
	}
	// A new token in the file works; the created one survived the restart.
	fresh, _ := inventory.NewToken()
	if err := os.WriteFile(tokFile, []byte(fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "--data", data, "--listen", addr, "--admin-listen", admin)
	waitGet(t, http.DefaultClient, "http://"+addr+"/healthz").Body.Close()
	for _, tk := range []string{fresh, ops.Token} {
		if code, _, err := c.do(m, "GET", "/api/v1/tokens", tk, "", ""); err != nil || code != 200 {
			t.Errorf("token after restart: %d %v", code, err)
		}
	}
	if code, _, _ := c.do(m, "GET", "/api/v1/tokens", c.token, "", ""); code != 401 {
		t.Errorf("revoked token after restart: %d, want 401", code)
	}
}

func TestDaemonBadRetention(t *testing.T) {
	out, err := exec.Command(binary, "--event-retention", "-1h", "--data", t.TempDir(), "--listen", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--event-retention") {
		t.Errorf("negative retention: %v %q, want a failure", err, out)
	}
}

// TestDaemonPrune runs one pruning round on a real inventory.
func TestDaemonPrune(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := dqlite.Open(ctx, dqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(ctx)
	now := time.Now()
	for i, age := range []time.Duration{50 * time.Hour, 49 * time.Hour, time.Hour} {
		for _, n := range []string{"a", "b"} {
			if n == "b" && i == 2 {
				continue // b's latest event is old
			}
			if err := store.AddEvent(ctx, inventory.Event{Node: n, Stage: fmt.Sprint(i), Time: now.Add(-age)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pruneOnce(ctx, store, now.Add(-48*time.Hour), slog.New(slog.DiscardHandler))
	for node, want := range map[string]int{"a": 1, "b": 1} {
		if ev, err := store.Events(ctx, node, 0); err != nil || len(ev) != want {
			t.Errorf("%s after prune: %+v %v; want %d events", node, ev, err, want)
		}
	}
	if st, _ := store.Status(ctx); len(st) != 2 {
		t.Errorf("status after prune lists %d nodes, want 2", len(st))
	}
	startPruning(ctx, store, 0, nil)() // 0 keeps everything: nothing to start or stop
	if got := pruneEvery(720 * time.Hour); got != time.Hour {
		t.Errorf("pruneEvery(720h) = %s, want 1h", got)
	}
}
