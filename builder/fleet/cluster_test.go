package fleet_test

import (
	"context"
	"testing"

	"github.com/lablup/bainode/builder/fleet"
)

// A lone server has no members to remove; removal itself runs against
// real members in cmd/bainoded's tests.
func TestRemoveMemberLone(t *testing.T) {
	srv, _ := server(t)
	c := &fleet.Client{BaseURL: srv.URL, Token: adminToken}
	if _, err := c.RemoveMember(context.Background(), "127.0.0.1:9001"); !fleet.IsNotFound(err) {
		t.Errorf("lone server: got %v, want a 404", err)
	}
	for _, bad := range []string{"", "a/b", ".."} {
		if _, err := c.RemoveMember(context.Background(), bad); err == nil || fleet.StatusCode(err) != 0 {
			t.Errorf("member %q: got %v, want a local error", bad, err)
		}
	}
}
