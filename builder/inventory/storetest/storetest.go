// Package storetest checks that an inventory.Store behaves like the
// reference in-memory store, so every backend passes the same cases.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

// Run runs the conformance cases; open must return an empty store.
func Run(t *testing.T, open func(t *testing.T) inventory.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s inventory.Store)
	}{
		{"site", testSite},
		{"nodes", testNodes},
		{"events", testEvents},
		{"tokens", testTokens},
		{"revision", testRevision},
		{"concurrent", testConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func testSite(t *testing.T, s inventory.Store) {
	c := ctx(t)
	if _, err := s.Site(c); !errors.Is(err, inventory.ErrNotFound) {
		t.Fatalf("empty store Site: got %v, want ErrNotFound", err)
	}
	v1, err := s.PutSite(c, []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.PutSite(c, []byte("version: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v2.ID <= v1.ID {
		t.Errorf("site ids: got %d then %d, want increasing", v1.ID, v2.ID)
	}
	latest, err := s.Site(c)
	if err != nil || latest.ID != v2.ID || string(latest.YAML) != "version: 2\n" || latest.Created.IsZero() {
		t.Errorf("Site: got %+v, %v; want version 2", latest, err)
	}
	hist, err := s.SiteHistory(c, 0)
	if err != nil || len(hist) != 2 || hist[0].ID != v2.ID || hist[1].ID != v1.ID {
		t.Errorf("SiteHistory: got %+v, %v; want v2, v1", hist, err)
	}
	if hist, _ := s.SiteHistory(c, 1); len(hist) != 1 {
		t.Errorf("SiteHistory(1): got %d versions, want 1", len(hist))
	}
}

func testNodes(t *testing.T, s inventory.Store) {
	c := ctx(t)
	a := inventory.Node{Hostname: "a1", MACs: []string{"52:54:00:00:00:01", "52:54:00:00:00:02"},
		IP: "10.0.0.1", Role: "agent", Overrides: []byte("x: 1\n"), TokenHash: "h1"}
	b := inventory.Node{Hostname: "b1", MACs: []string{"52:54:00:00:00:03"}, Role: "manager"}
	for _, n := range []inventory.Node{a, b} {
		if err := s.PutNode(c, n); err != nil {
			t.Fatalf("PutNode(%s): %v", n.Hostname, err)
		}
	}
	got, err := s.NodeByMAC(c, "52:54:00:00:00:02")
	if err != nil || !equalNode(got, a) {
		t.Errorf("NodeByMAC: got %+v, %v; want %+v", got, err, a)
	}
	if got, err := s.Node(c, "b1"); err != nil || !equalNode(got, b) {
		t.Errorf("Node(b1): got %+v, %v; want %+v", got, err, b)
	}
	// A MAC can only belong to one node.
	steal := inventory.Node{Hostname: "b1", MACs: []string{"52:54:00:00:00:01"}}
	if err := s.PutNode(c, steal); !errors.Is(err, inventory.ErrConflict) {
		t.Errorf("PutNode stealing a mac: got %v, want ErrConflict", err)
	}
	if got, _ := s.Node(c, "b1"); !equalNode(got, b) {
		t.Errorf("failed PutNode changed the node: got %+v", got)
	}
	// Replacing a node drops its old MACs.
	a2 := a
	a2.MACs = []string{"52:54:00:00:00:09"}
	if err := s.PutNode(c, a2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NodeByMAC(c, "52:54:00:00:00:01"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("old mac after replace: got %v, want ErrNotFound", err)
	}
	nodes, err := s.Nodes(c)
	if err != nil || len(nodes) != 2 || nodes[0].Hostname != "a1" || nodes[1].Hostname != "b1" {
		t.Errorf("Nodes: got %+v, %v", nodes, err)
	}
	if err := s.DeleteNode(c, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNode(c, "a1"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("second DeleteNode: got %v, want ErrNotFound", err)
	}
	if _, err := s.NodeByMAC(c, "52:54:00:00:00:09"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("mac of deleted node: got %v, want ErrNotFound", err)
	}
	if _, err := s.Node(c, "nope"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("Node(nope): got %v, want ErrNotFound", err)
	}
}

func equalNode(a, b inventory.Node) bool {
	return a.Hostname == b.Hostname && slices.Equal(sorted(a.MACs), sorted(b.MACs)) && a.IP == b.IP &&
		a.Role == b.Role && bytes.Equal(a.Overrides, b.Overrides) && a.TokenHash == b.TokenHash
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func testEvents(t *testing.T, s inventory.Store) {
	c := ctx(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 3; i++ {
		for _, n := range []string{"b1", "a1"} {
			e := inventory.Event{Node: n, Stage: fmt.Sprintf("stage-%d", i), Result: "success",
				Time: t0.Add(time.Duration(i) * time.Second), Detail: "d"}
			if err := s.AddEvent(c, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	ev, err := s.Events(c, "a1", 0)
	if err != nil || len(ev) != 3 || ev[0].Stage != "stage-0" || ev[2].Stage != "stage-2" {
		t.Fatalf("Events: got %+v, %v", ev, err)
	}
	if !ev[1].Time.Equal(t0.Add(time.Second)) || ev[1].Node != "a1" || ev[1].Detail != "d" {
		t.Errorf("event round trip: got %+v", ev[1])
	}
	if ev, _ := s.Events(c, "a1", 2); len(ev) != 2 || ev[1].Stage != "stage-2" {
		t.Errorf("Events(limit 2): got %+v, want the last two", ev)
	}
	st, err := s.Status(c)
	if err != nil || len(st) != 2 || st[0].Node != "a1" || st[0].Stage != "stage-2" || st[1].Node != "b1" {
		t.Errorf("Status: got %+v, %v", st, err)
	}
	if ev, err := s.Events(c, "none", 0); err != nil || len(ev) != 0 {
		t.Errorf("Events(none): got %+v, %v; want empty", ev, err)
	}
}

func testTokens(t *testing.T, s inventory.Store) {
	c := ctx(t)
	h := inventory.HashToken("secret")
	if err := s.AdminToken(c, h); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("unknown token: got %v, want ErrNotFound", err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := s.PutAdminToken(c, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AdminToken(c, h); err != nil {
		t.Errorf("stored token: got %v", err)
	}
	k1, err := s.Secret(c)
	if err != nil || len(k1) < 16 {
		t.Fatalf("Secret: got %x, %v", k1, err)
	}
	if k2, _ := s.Secret(c); !bytes.Equal(k1, k2) {
		t.Errorf("Secret changed between calls")
	}
}

func testRevision(t *testing.T, s inventory.Store) {
	c := ctx(t)
	r0, err := s.Revision(c)
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { _, err := s.PutSite(c, []byte("a")); return err },
		func() error { return s.PutNode(c, inventory.Node{Hostname: "n"}) },
		func() error { return s.DeleteNode(c, "n") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		r, err := s.Revision(c)
		if err != nil || r == r0 {
			t.Errorf("step %d: revision %d unchanged (%v)", i, r, err)
		}
		r0 = r
	}
	if err := s.AddEvent(c, inventory.Event{Node: "n", Stage: "x"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Revision(c); r != r0 {
		t.Errorf("AddEvent changed the revision")
	}
}

// testConcurrent checks that concurrent writers lose nothing and that
// each writer's events keep their order, as group commit must.
func testConcurrent(t *testing.T, s inventory.Store) {
	c := ctx(t)
	const writers, each = 64, 5 // more than one batch of dqlite's
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- s.AddEvent(c, inventory.Event{Node: "c", Stage: fmt.Sprintf("%d-%d", w, i)})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ev, err := s.Events(c, "c", 0)
	if err != nil || len(ev) != writers*each {
		t.Fatalf("concurrent AddEvent: got %d events, %v; want %d", len(ev), err, writers*each)
	}
	next := map[int]int{}
	for _, e := range ev {
		var w, i int
		fmt.Sscanf(e.Stage, "%d-%d", &w, &i)
		if i != next[w] {
			t.Fatalf("writer %d: event %d stored where %d was due", w, i, next[w])
		}
		next[w]++
	}
}
