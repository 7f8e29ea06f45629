package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

// rotateNodeToken gives a node the token of its next generation. The old
// token stops working as soon as the store has the new hash; the node
// learns the new one from its next seed fetch (vendor-data).
func (s *server) rotateNodeToken(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	n, err := s.store.Node(r.Context(), host)
	if s.failed(w, r, err) {
		return
	}
	key, err := s.nodeSecret(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	gen := n.TokenGen + 1
	token := inventory.NodeToken(key, host, gen)
	err = s.store.SetNodeToken(r.Context(), host, gen, inventory.HashToken(token))
	s.cache.invalidate() // cached seeds carry the old token
	if s.failed(w, r, err) {
		return
	}
	s.log.Info("node token rotated", "node", host)
	n.TokenGen, n.TokenHash = gen, inventory.HashToken(token)
	out := toJSON(n)
	out.Token = token
	writeJSON(w, http.StatusOK, out)
}

// revokeNodeToken clears a node's token hash: it cannot report until a
// rotation gives it a new token. Its seed is still served.
func (s *server) revokeNodeToken(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	n, err := s.store.Node(r.Context(), host)
	if err == nil {
		err = s.store.SetNodeToken(r.Context(), host, n.TokenGen, "")
		s.cache.invalidate()
	}
	if s.failed(w, r, err) {
		return
	}
	s.log.Info("node token revoked", "node", host)
	w.WriteHeader(http.StatusNoContent)
}

// adminTokenJSON is an admin token on the API: never the token itself,
// except in the answer to its creation.
type adminTokenJSON struct {
	ID      int64     `json:"id"`
	Prefix  string    `json:"prefix"` // of the token's SHA-256, to tell tokens apart
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Current bool      `json:"current,omitempty"` // the token of this request
	Token   string    `json:"token,omitempty"`
}

// hashPrefix is short enough to show and reveals nothing usable: the
// token has 256 random bits.
const hashPrefix = 12

func toTokenJSON(t inventory.AdminToken, own string) adminTokenJSON {
	return adminTokenJSON{ID: t.ID, Prefix: t.Hash[:min(hashPrefix, len(t.Hash))], Name: t.Name,
		Created: t.Created, Current: t.Hash == own}
}

func (s *server) listAdminTokens(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.AdminTokens(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	own := inventory.HashToken(bearer(r))
	out := make([]adminTokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, toTokenJSON(t, own))
	}
	writeJSON(w, http.StatusOK, out)
}

const maxTokenBody = 4 << 10

func (s *server) createAdminToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTokenBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			bodyError(w, err)
			return
		}
		http.Error(w, `expected {"name": "..."}: `+err.Error(), http.StatusBadRequest)
		return
	}
	if in.Name == "" || len(in.Name) > 64 || clean(in.Name, 64) != in.Name || strings.TrimSpace(in.Name) != in.Name {
		http.Error(w, "a token needs a name of 1 to 64 printable characters", http.StatusBadRequest)
		return
	}
	token, err := inventory.NewToken()
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	t, err := s.store.CreateAdminToken(r.Context(), inventory.HashToken(token), in.Name)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info("admin token created", "id", t.ID, "name", t.Name)
	out := toTokenJSON(t, "")
	out.Token = token
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
}

func (s *server) revokeAdminToken(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "token id must be a positive number (see GET /api/v1/tokens)", http.StatusBadRequest)
		return
	}
	list, err := s.store.AdminTokens(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	own := inventory.HashToken(bearer(r))
	for _, t := range list {
		if t.ID == id && t.Hash == own {
			// Revoking the token in hand would lock this operator out.
			http.Error(w, fmt.Sprintf("token %d is the one this request uses: it cannot revoke itself; "+
				"revoke it with another admin token", id), http.StatusConflict)
			return
		}
	}
	err = s.store.RevokeAdminToken(r.Context(), id)
	if errors.Is(err, inventory.ErrNotFound) {
		http.Error(w, fmt.Sprintf("no active admin token %d", id), http.StatusNotFound)
		return
	} else if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info("admin token revoked", "id", id)
	w.WriteHeader(http.StatusNoContent)
}
