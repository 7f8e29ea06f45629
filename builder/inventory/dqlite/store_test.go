package dqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/inventory/dqlite"
	"github.com/lablup/bainode/builder/inventory/storetest"
)

func open(t *testing.T, dir string) *dqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := dqlite.Open(ctx, dqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) inventory.Store {
		s := open(t, t.TempDir())
		t.Cleanup(func() { s.Close(context.Background()) })
		return s
	})
}

// TestRestart checks that a lone node keeps its data across a restart in
// the same directory, and keeps its private address.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir)
	addr := s.Address()
	if _, err := s.PutSite(ctx, []byte("site: 1\n")); err != nil {
		t.Fatal(err)
	}
	n := inventory.Node{Hostname: "gpu1", MACs: []string{"52:54:00:12:34:56"}, IP: "10.0.0.5", TokenHash: "x"}
	if err := s.PutNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(ctx, inventory.Event{Node: "gpu1", Stage: "init", Result: "start"}); err != nil {
		t.Fatal(err)
	}
	key, err := s.Secret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := s.Revision(ctx)
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = open(t, dir)
	defer s.Close(ctx)
	if got := s.Address(); got != addr {
		t.Errorf("address after restart: got %q, want %q", got, addr)
	}
	if site, err := s.Site(ctx); err != nil || string(site.YAML) != "site: 1\n" {
		t.Errorf("site after restart: got %q, %v", site.YAML, err)
	}
	if got, err := s.NodeByMAC(ctx, "52:54:00:12:34:56"); err != nil || got.IP != "10.0.0.5" {
		t.Errorf("node after restart: got %+v, %v", got, err)
	}
	if ev, err := s.Events(ctx, "gpu1", 0); err != nil || len(ev) != 1 {
		t.Errorf("events after restart: got %+v, %v", ev, err)
	}
	if k2, _ := s.Secret(ctx); string(k2) != string(key) {
		t.Errorf("secret changed across restart")
	}
	if r2, _ := s.Revision(ctx); r2 != rev {
		t.Errorf("revision after restart: got %d, want %d", r2, rev)
	}
	if fi, err := os.Stat(filepath.Join(dir, "info.yaml")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("info.yaml: %v, mode %v; want private", err, fi.Mode())
	}
}

func TestJoinNeedsAddress(t *testing.T) {
	_, err := dqlite.Open(context.Background(), dqlite.Config{Dir: t.TempDir(), Join: []string{"127.0.0.1:1"}})
	if err == nil {
		t.Fatal("join without an address: want an error")
	}
}
