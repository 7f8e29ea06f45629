package dqlite_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/inventory/dqlite"
)

func TestRemoveMemberLone(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close(context.Background())
	ctx := context.Background()
	if _, err := s.RemoveMember(ctx, "127.0.0.1:1"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("unknown member: got %v", err)
	}
	if _, err := s.RemoveMember(ctx, s.Address()); !errors.Is(err, inventory.ErrRemoveSelf) {
		t.Errorf("itself: got %v", err)
	}
}

// TestRecoverLone checks that Recover refuses a directory in use and
// leaves a stopped node's data intact.
func TestRecoverLone(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir)
	if _, err := s.PutSite(ctx, []byte("site: 1\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := dqlite.Recover(dir, nil); !errors.Is(err, dqlite.ErrRunning) {
		t.Errorf("recover while open: got %v", err)
	}
	if _, err := dqlite.Open(ctx, dqlite.Config{Dir: dir}); !errors.Is(err, dqlite.ErrRunning) {
		t.Errorf("second open: got %v", err)
	}
	addr := s.Address()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dqlite.Recover(dir, []inventory.Member{{ID: 7, Address: "x"}, {ID: 7, Address: "y"}}); err == nil {
		t.Error("a member listed twice was accepted")
	}
	conf, err := dqlite.Recover(dir, nil)
	if err != nil || len(conf) != 1 || conf[0].Address != addr || conf[0].Role != "voter" {
		t.Fatalf("recover: %+v %v", conf, err)
	}
	s = open(t, dir)
	defer s.Close(ctx)
	if v, err := s.Site(ctx); err != nil || string(v.YAML) != "site: 1\n" {
		t.Errorf("site after recover: %q %v", v.YAML, err)
	}
	if _, err := s.PutSite(ctx, []byte("site: 2\n")); err != nil {
		t.Errorf("write after recover: %v", err)
	}
}
