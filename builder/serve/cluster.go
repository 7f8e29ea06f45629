package serve

import (
	"errors"
	"net/http"

	"github.com/lablup/bainode/builder/inventory"
)

// removeMember takes a member out of the raft configuration, through the
// leader, and answers with the member as it was.
func (s *server) removeMember(w http.ResponseWriter, r *http.Request) {
	c, ok := s.store.(inventory.MemberRemover)
	if !ok {
		notFound(w)
		return
	}
	m, err := c.RemoveMember(r.Context(), r.PathValue("member"))
	switch {
	case err == nil:
		s.log.Info("cluster member removed", "id", m.ID, "address", m.Address, "role", m.Role)
		writeJSON(w, http.StatusOK, map[string]any{"removed": m})
	case errors.Is(err, inventory.ErrNotFound):
		http.Error(w, "no such cluster member (give its id or address as GET /api/v1/cluster shows them)", http.StatusNotFound)
	case errors.Is(err, inventory.ErrLastVoter):
		http.Error(w, "refusing to remove the last voter: the cluster would be left without a quorum", http.StatusConflict)
	case errors.Is(err, inventory.ErrRemoveSelf):
		http.Error(w, "a member cannot remove itself: stop it and ask another member", http.StatusConflict)
	default:
		s.storeError(w, r, err)
	}
}
