package serve_test

import "testing"

// The removal itself runs against real members in cmd/bainoded's tests;
// here only what needs no cluster.
func TestRemoveMemberRoute(t *testing.T) {
	f := newFixture(t, nil)
	if code, _ := f.do("DELETE", "/api/v1/cluster/members/1", "", ""); code != 401 {
		t.Errorf("without a token: got %d, want 401", code)
	}
	if code, _ := f.do("DELETE", "/api/v1/cluster/members/1", f.tokens["gpu1"], ""); code != 401 {
		t.Errorf("with a node token: got %d, want 401", code)
	}
	if code, _ := f.do("DELETE", "/api/v1/cluster/members/1", f.admin, ""); code != 404 {
		t.Errorf("on a memory store: got %d, want 404", code)
	}
}
