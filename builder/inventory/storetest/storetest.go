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
		{"node-token", testNodeToken},
		{"admin-tokens", testAdminTokens},
		{"prune", testPrune},
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
		IP: "10.0.0.1", Role: "agent", Overrides: []byte("x: 1\n"), TokenHash: "h1", TokenGen: 7}
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
		a.Role == b.Role && bytes.Equal(a.Overrides, b.Overrides) && a.TokenHash == b.TokenHash &&
		a.TokenGen == b.TokenGen
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

func testNodeToken(t *testing.T, s inventory.Store) {
	c := ctx(t)
	n := inventory.Node{Hostname: "a1", MACs: []string{"52:54:00:00:00:01"}, TokenHash: "h1", TokenGen: 5}
	if err := s.PutNode(c, n); err != nil {
		t.Fatal(err)
	}
	r0, _ := s.Revision(c)
	if err := s.SetNodeToken(c, "a1", 6, "h2"); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Revision(c); r == r0 {
		t.Errorf("SetNodeToken left the revision at %d: cached seeds would keep the old token", r)
	}
	want := n
	want.TokenGen, want.TokenHash = 6, "h2"
	if got, err := s.Node(c, "a1"); err != nil || !equalNode(got, want) {
		t.Errorf("after SetNodeToken: got %+v, %v; want %+v", got, err, want)
	}
	// Replacing the node must not undo the rotation.
	edit := n
	edit.Role, edit.TokenGen, edit.TokenHash = "agent", 1, "stale"
	if err := s.PutNode(c, edit); err != nil {
		t.Fatal(err)
	}
	want.Role = "agent"
	if got, _ := s.NodeByMAC(c, "52:54:00:00:00:01"); !equalNode(got, want) {
		t.Errorf("PutNode over a rotated token: got %+v, want %+v", got, want)
	}
	// Revoked: an empty hash, which a replace does not fill in either.
	if err := s.SetNodeToken(c, "a1", 6, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.PutNode(c, edit); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Node(c, "a1"); got.TokenHash != "" || got.TokenGen != 6 {
		t.Errorf("PutNode revived a revoked token: got %+v", got)
	}
	if err := s.SetNodeToken(c, "nope", 1, "h"); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("SetNodeToken(nope): got %v, want ErrNotFound", err)
	}
	// A node added again after a delete starts from what it is given.
	if err := s.DeleteNode(c, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutNode(c, n); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Node(c, "a1"); !equalNode(got, n) {
		t.Errorf("re-added node: got %+v, want %+v", got, n)
	}
}

func testAdminTokens(t *testing.T, s inventory.Store) {
	c := ctx(t)
	file := inventory.HashToken("from a file")
	if err := s.PutAdminToken(c, file); err != nil {
		t.Fatal(err)
	}
	ci, err := s.CreateAdminToken(c, inventory.HashToken("ci"), "ci")
	if err != nil || ci.ID == 0 || ci.Name != "ci" || ci.Created.IsZero() {
		t.Fatalf("CreateAdminToken: got %+v, %v", ci, err)
	}
	list, err := s.AdminTokens(c)
	if err != nil || len(list) != 2 || list[0].Hash != file || list[0].Name != "" ||
		list[1].ID != ci.ID || list[1].Hash != ci.Hash || list[1].Name != "ci" || list[0].ID >= list[1].ID {
		t.Fatalf("AdminTokens: got %+v, %v", list, err)
	}
	if err := s.AdminToken(c, ci.Hash); err != nil {
		t.Errorf("created token: got %v", err)
	}
	for _, id := range []int64{list[0].ID, ci.ID} {
		if err := s.RevokeAdminToken(c, id); err != nil {
			t.Fatalf("RevokeAdminToken(%d): %v", id, err)
		}
		if err := s.RevokeAdminToken(c, id); !errors.Is(err, inventory.ErrNotFound) {
			t.Errorf("second RevokeAdminToken(%d): got %v, want ErrNotFound", id, err)
		}
	}
	if err := s.RevokeAdminToken(c, 999999); !errors.Is(err, inventory.ErrNotFound) {
		t.Errorf("RevokeAdminToken(unknown): got %v, want ErrNotFound", err)
	}
	if err := s.AdminToken(c, ci.Hash); !errors.Is(err, inventory.ErrRevoked) {
		t.Errorf("revoked token: got %v, want ErrRevoked", err)
	}
	// A token file holding a revoked token cannot bring it back.
	if err := s.PutAdminToken(c, file); !errors.Is(err, inventory.ErrRevoked) {
		t.Errorf("PutAdminToken of a revoked hash: got %v, want ErrRevoked", err)
	}
	if err := s.AdminToken(c, file); !errors.Is(err, inventory.ErrRevoked) {
		t.Errorf("revoked file token after PutAdminToken: got %v, want ErrRevoked", err)
	}
	if list, err := s.AdminTokens(c); err != nil || len(list) != 0 {
		t.Errorf("AdminTokens after revoking all: got %+v, %v", list, err)
	}
}

func testPrune(t *testing.T, s inventory.Store) {
	c := ctx(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	add := func(node string, age time.Duration, stage string) {
		t.Helper()
		if err := s.AddEvent(c, inventory.Event{Node: node, Stage: stage, Result: "success", Time: t0.Add(-age)}); err != nil {
			t.Fatal(err)
		}
	}
	// old: everything is old, the latest must stay. mixed: old then new.
	add("old", 3*time.Hour, "o1")
	add("old", 2*time.Hour, "o2")
	add("mixed", 2*time.Hour, "m1")
	add("mixed", 0, "m2")
	add("mixed", -time.Hour, "m3")
	add("old", 90*time.Minute, "o3")
	cut := t0.Add(-time.Hour)
	n, err := s.PruneEvents(c, cut)
	if err != nil || n != 3 {
		t.Errorf("PruneEvents: got %d, %v; want 3", n, err)
	}
	stages := func(node string) []string {
		ev, err := s.Events(c, node, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ev {
			out = append(out, e.Stage)
		}
		return out
	}
	if got := stages("old"); !slices.Equal(got, []string{"o3"}) {
		t.Errorf("old node after prune: got %v, want its latest event [o3]", got)
	}
	if got := stages("mixed"); !slices.Equal(got, []string{"m2", "m3"}) {
		t.Errorf("mixed node after prune: got %v, want [m2 m3]", got)
	}
	if st, err := s.Status(c); err != nil || len(st) != 2 || st[0].Stage != "m3" || st[1].Stage != "o3" {
		t.Errorf("Status after prune: got %+v, %v", st, err)
	}
	if n, err := s.PruneEvents(c, cut); err != nil || n != 0 {
		t.Errorf("second PruneEvents: got %d, %v; want 0", n, err)
	}
	// A node's latest deploy event decides whether it boots its disk, so it
	// outlives the cloud-init events that follow it.
	add("img", 5*time.Hour, inventory.DeployStage)
	add("img", 4*time.Hour, inventory.DeployStage)
	add("img", 3*time.Hour, "i1")
	add("img", 2*time.Hour, "i2")
	if n, err := s.PruneEvents(c, cut); err != nil || n != 2 {
		t.Errorf("PruneEvents with deploy events: got %d, %v; want 2", n, err)
	}
	if got := stages("img"); !slices.Equal(got, []string{inventory.DeployStage, "i2"}) {
		t.Errorf("img node after prune: got %v, want [deploy i2]", got)
	}
}
