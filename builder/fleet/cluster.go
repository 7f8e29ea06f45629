package fleet

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// RemoveMember takes a member out of a clustered server's raft
// configuration, by its ID (as Members shows it) or its cluster address,
// and returns it as it was. The server refuses the last voter and the
// member it runs on (409); an unknown member is an error for which
// IsNotFound is true.
func (c *Client) RemoveMember(ctx context.Context, member string) (Member, error) {
	var out struct {
		Removed Member `json:"removed"`
	}
	if member == "" || strings.ContainsAny(member, "/\\") || member == "." || member == ".." {
		return out.Removed, fmt.Errorf("invalid member %q", member)
	}
	err := c.do(ctx, http.MethodDelete, "/api/v1/cluster/members/"+url.PathEscape(member), nil, nil, "", &out)
	return out.Removed, err
}
