package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

func (s *server) adminMux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /api/v1/nodes", s.listNodes)
	m.HandleFunc("GET /api/v1/nodes/{host}", s.getNode)
	m.HandleFunc("PUT /api/v1/nodes/{host}", s.putNode)
	m.HandleFunc("DELETE /api/v1/nodes/{host}", s.deleteNode)
	m.HandleFunc("GET /api/v1/nodes/{host}/events", s.nodeEvents)
	m.HandleFunc("POST /api/v1/nodes/{host}/token", s.rotateNodeToken)
	m.HandleFunc("DELETE /api/v1/nodes/{host}/token", s.revokeNodeToken)
	m.HandleFunc("POST /api/v1/nodes/{host}/redeploy", s.redeploy) // deploy.go
	m.HandleFunc("GET /api/v1/tokens", s.listAdminTokens)
	m.HandleFunc("POST /api/v1/tokens", s.createAdminToken)
	m.HandleFunc("DELETE /api/v1/tokens/{id}", s.revokeAdminToken)
	m.HandleFunc("GET /api/v1/site", s.getSite)
	m.HandleFunc("PUT /api/v1/site", s.putSite)
	m.HandleFunc("GET /api/v1/site/history", s.siteHistory)
	m.HandleFunc("GET /api/v1/status", s.status)
	m.HandleFunc("GET /api/v1/cluster", s.cluster)
	m.HandleFunc("DELETE /api/v1/cluster/members/{member}", s.removeMember) // cluster.go
	return m
}

// requireAdmin lets through requests whose bearer token hashes to a stored
// admin token.
func (s *server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := bearer(r)
		err := errors.New("missing token")
		if token != "" {
			err = s.store.AdminToken(r.Context(), inventory.HashToken(token))
		}
		switch {
		case err == nil:
			next.ServeHTTP(w, r)
		case errors.Is(err, inventory.ErrRevoked):
			w.Header().Set("WWW-Authenticate", `Bearer realm="bainode admin", error="invalid_token"`)
			http.Error(w, "admin token revoked", http.StatusUnauthorized)
		case token == "" || errors.Is(err, inventory.ErrNotFound):
			w.Header().Set("WWW-Authenticate", `Bearer realm="bainode admin"`)
			http.Error(w, "admin token required", http.StatusUnauthorized)
		default:
			s.storeError(w, r, err)
		}
	})
}

// nodeJSON is a node on the admin API. TokenHash stays inside; Token is
// only filled in answers to PUT and token rotation, for operators wiring a
// node by hand.
type nodeJSON struct {
	Hostname     string   `json:"hostname"`
	MACs         []string `json:"macs"`
	IP           string   `json:"ip,omitempty"`
	Role         string   `json:"role,omitempty"`
	Overrides    string   `json:"overrides,omitempty"` // YAML
	Token        string   `json:"token,omitempty"`
	TokenRevoked bool     `json:"token_revoked,omitempty"`
}

func toJSON(n inventory.Node) nodeJSON {
	if n.MACs == nil {
		n.MACs = []string{}
	}
	return nodeJSON{Hostname: n.Hostname, MACs: n.MACs, IP: n.IP, Role: n.Role, Overrides: string(n.Overrides),
		TokenRevoked: n.TokenHash == ""}
}

// failed answers a store error, if there is one: 404 for ErrNotFound, the
// generic 503 for the rest. It reports whether it answered.
func (s *server) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, inventory.ErrNotFound):
		notFound(w)
	default:
		s.storeError(w, r, err)
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, "application/json", v)
}

func writeJSONAs(w http.ResponseWriter, status int, ctype string, v any) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *server) listNodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := s.store.Nodes(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := make([]nodeJSON, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, toJSON(n))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getNode(w http.ResponseWriter, r *http.Request) {
	n, err := s.store.Node(r.Context(), r.PathValue("host"))
	if s.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, toJSON(n))
}

func (s *server) putNode(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	if err := inventory.CheckHostname(host); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in nodeJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxNodeBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			bodyError(w, err)
			return
		}
		http.Error(w, "invalid node: "+err.Error(), http.StatusBadRequest)
		return
	}
	n, err := checkNode(host, in)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key, err := s.nodeSecret(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	// Only a new node takes this token: replacing keeps the stored one.
	if n.TokenGen, err = inventory.FirstTokenGen(); err != nil {
		s.storeError(w, r, err)
		return
	}
	n.TokenHash = inventory.HashToken(inventory.NodeToken(key, host, n.TokenGen))

	// Refuse a node the stored site cannot render, so a bad override shows
	// up here and not as a 500 to a booting machine.
	if site, err := s.store.Site(r.Context()); err == nil {
		base, _ := s.baseURL(r)
		if _, err := s.renderNode(r.Context(), site.YAML, n, base); err != nil {
			var re *renderError
			if errors.As(err, &re) {
				rejectRender(w, r, []*renderError{re})
				return
			}
			s.adminError(w, r, err)
			return
		}
	} else if !errors.Is(err, inventory.ErrNotFound) {
		s.storeError(w, r, err)
		return
	}
	err = s.store.PutNode(r.Context(), n)
	s.cache.invalidate()
	if errors.Is(err, inventory.ErrConflict) {
		http.Error(w, "a mac of this node is registered to another node", http.StatusConflict)
		return
	} else if err != nil {
		s.storeError(w, r, err)
		return
	}
	stored, err := s.store.Node(r.Context(), host)
	if err != nil { // deleted meanwhile, or the store failed
		s.storeError(w, r, err)
		return
	}
	out := toJSON(stored)
	if stored.TokenHash != "" {
		out.Token = inventory.NodeToken(key, host, stored.TokenGen)
	}
	writeJSON(w, http.StatusOK, out)
}

// checkNode validates admin input and returns it in stored form.
func checkNode(host string, in nodeJSON) (inventory.Node, error) {
	if in.Hostname != "" && in.Hostname != host {
		return inventory.Node{}, fmt.Errorf("hostname %q in body does not match %q in path", in.Hostname, host)
	}
	if in.Token != "" || in.TokenRevoked {
		return inventory.Node{}, errors.New("the token is the server's: rotate or revoke it with POST or DELETE on .../token")
	}
	macs, err := inventory.NormalizeMACs(in.MACs)
	if err != nil {
		return inventory.Node{}, err
	}
	if in.IP != "" {
		a, err := netip.ParseAddr(in.IP)
		if err != nil {
			return inventory.Node{}, fmt.Errorf("invalid ip %q", in.IP)
		}
		in.IP = a.Unmap().String()
	}
	if len(in.Role) > 64 || clean(in.Role, 64) != in.Role {
		return inventory.Node{}, fmt.Errorf("invalid role %q", in.Role)
	}
	n := inventory.Node{Hostname: host, MACs: macs, IP: in.IP, Role: in.Role}
	if in.Overrides != "" {
		n.Overrides = []byte(in.Overrides)
	}
	return n, nil
}

// adminError returns render problems to the operator and hides the rest.
func (s *server) adminError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errRender) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if errors.Is(err, errUnknown) {
		notFound(w)
		return
	}
	s.storeError(w, r, err)
}

func (s *server) deleteNode(w http.ResponseWriter, r *http.Request) {
	err := s.store.DeleteNode(r.Context(), r.PathValue("host"))
	s.cache.invalidate()
	if s.failed(w, r, err) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type eventJSON struct {
	Node   string    `json:"node"`
	Stage  string    `json:"stage"`
	Result string    `json:"result"`
	Time   time.Time `json:"time"`
	Detail string    `json:"detail,omitempty"`
}

func (s *server) nodeEvents(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "limit must be a number >= 0 (0: all)", http.StatusBadRequest)
			return
		}
		limit = n
	}
	ev, err := s.store.Events(r.Context(), r.PathValue("host"), limit)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := make([]eventJSON, 0, len(ev))
	for _, e := range ev {
		out = append(out, eventJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) putSite(w http.ResponseWriter, r *http.Request) {
	site, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSiteBody))
	if err != nil {
		bodyError(w, err)
		return
	}
	if s.cfg.Validator != nil {
		if err := s.cfg.Validator(site); err != nil {
			rejectSite(w, r, err)
			return
		}
	}
	// Every node must still render: a site is only as good as its worst node.
	nodes, err := s.store.Nodes(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	base, _ := s.baseURL(r)
	var errs []*renderError
	for _, n := range nodes {
		if _, err := s.renderNode(r.Context(), site, n, base); err != nil {
			var re *renderError
			if !errors.As(err, &re) {
				s.storeError(w, r, err)
				return
			}
			errs = append(errs, re)
		}
	}
	if len(errs) > 0 {
		rejectRender(w, r, errs)
		return
	}
	v, err := s.store.PutSite(r.Context(), site)
	s.cache.invalidate()
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": v.ID, "created": v.Created})
}

func (s *server) getSite(w http.ResponseWriter, r *http.Request) {
	v, err := s.store.Site(r.Context())
	if s.failed(w, r, err) {
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Bainode-Site-Version", strconv.FormatInt(v.ID, 10))
	io.Copy(w, bytes.NewReader(v.YAML))
}

func (s *server) siteHistory(w http.ResponseWriter, r *http.Request) {
	hist, err := s.store.SiteHistory(r.Context(), 0)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	type version struct {
		ID      int64     `json:"id"`
		Created time.Time `json:"created"`
		Bytes   int       `json:"bytes"`
	}
	out := make([]version, 0, len(hist))
	for _, v := range hist {
		out = append(out, version{v.ID, v.Created, len(v.YAML)})
	}
	writeJSON(w, http.StatusOK, out)
}

// status lists every node with its latest event; nodes that never
// reported are "pending".
func (s *server) status(w http.ResponseWriter, r *http.Request) {
	nodes, err := s.store.Nodes(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	latest, err := s.store.Status(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	byNode := make(map[string]inventory.Event, len(latest))
	for _, e := range latest {
		byNode[e.Node] = e
	}
	type nodeStatus struct {
		eventJSON
		Role   string     `json:"role,omitempty"`
		Deploy *eventJSON `json:"deploy,omitempty"` // image mode's latest stage
	}
	out := make([]nodeStatus, 0, len(nodes))
	for _, n := range nodes {
		e, ok := byNode[n.Hostname]
		if !ok {
			e = inventory.Event{Node: n.Hostname, Result: "pending"}
		}
		ns := nodeStatus{eventJSON: eventJSON(e), Role: n.Role}
		if s.deploy != nil && e.Stage != "" {
			d, err := s.deployState(r, n.Hostname)
			if err != nil {
				s.storeError(w, r, err)
				return
			}
			if d.Stage != "" {
				ns.Deploy = (*eventJSON)(&d)
			}
		}
		out = append(out, ns)
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out})
}

func (s *server) cluster(w http.ResponseWriter, r *http.Request) {
	c, ok := s.store.(inventory.Clusterer)
	if !ok {
		notFound(w)
		return
	}
	members, err := c.Members(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": members})
}
