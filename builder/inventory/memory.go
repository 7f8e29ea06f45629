package inventory

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is a Store kept in process memory. The zero value is not usable;
// call NewMemory.
type Memory struct {
	mu       sync.RWMutex
	sites    []SiteVersion
	nodes    map[string]Node   // by hostname
	macs     map[string]string // mac -> hostname
	events   map[string][]Event
	tokens   map[string]*memToken // by hash
	tokenID  int64
	revision int64
	secret   []byte
	now      func() time.Time
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		nodes:  map[string]Node{},
		macs:   map[string]string{},
		events: map[string][]Event{},
		tokens: map[string]*memToken{},
		now:    time.Now,
	}
}

var _ Store = (*Memory)(nil)

// copies keep callers from mutating stored slices.
func cloneNode(n Node) Node {
	n.MACs = slices.Clone(n.MACs)
	n.Overrides = bytes.Clone(n.Overrides)
	return n
}

func cloneSite(s SiteVersion) SiteVersion {
	s.YAML = bytes.Clone(s.YAML)
	return s
}

func (m *Memory) PutSite(_ context.Context, yaml []byte) (SiteVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := SiteVersion{ID: int64(len(m.sites) + 1), YAML: bytes.Clone(yaml), Created: m.now().UTC()}
	m.sites = append(m.sites, v)
	m.revision++
	return cloneSite(v), nil
}

func (m *Memory) Site(_ context.Context) (SiteVersion, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.sites) == 0 {
		return SiteVersion{}, ErrNotFound
	}
	return cloneSite(m.sites[len(m.sites)-1]), nil
}

func (m *Memory) SiteHistory(_ context.Context, limit int) ([]SiteVersion, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []SiteVersion
	for i := len(m.sites) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		out = append(out, cloneSite(m.sites[i]))
	}
	return out, nil
}

func (m *Memory) PutNode(_ context.Context, n Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mac := range n.MACs {
		if owner, ok := m.macs[mac]; ok && owner != n.Hostname {
			return ErrConflict
		}
	}
	if old, ok := m.nodes[n.Hostname]; ok {
		for _, mac := range old.MACs {
			delete(m.macs, mac)
		}
	}
	for _, mac := range n.MACs {
		m.macs[mac] = n.Hostname
	}
	if old, ok := m.nodes[n.Hostname]; ok {
		n.TokenHash, n.TokenGen = old.TokenHash, old.TokenGen
	}
	m.nodes[n.Hostname] = cloneNode(n)
	m.revision++
	return nil
}

func (m *Memory) SetNodeToken(_ context.Context, hostname string, gen int64, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[hostname]
	if !ok {
		return ErrNotFound
	}
	n.TokenGen, n.TokenHash = gen, hash
	m.nodes[hostname] = n
	m.revision++
	return nil
}

func (m *Memory) DeleteNode(_ context.Context, hostname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.nodes[hostname]
	if !ok {
		return ErrNotFound
	}
	for _, mac := range old.MACs {
		delete(m.macs, mac)
	}
	delete(m.nodes, hostname)
	m.revision++
	return nil
}

func (m *Memory) Node(_ context.Context, hostname string) (Node, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, ok := m.nodes[hostname]
	if !ok {
		return Node{}, ErrNotFound
	}
	return cloneNode(n), nil
}

func (m *Memory) NodeByMAC(_ context.Context, mac string) (Node, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h, ok := m.macs[mac]
	if !ok {
		return Node{}, ErrNotFound
	}
	return cloneNode(m.nodes[h]), nil
}

func (m *Memory) Nodes(_ context.Context) ([]Node, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Node, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, cloneNode(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hostname < out[j].Hostname })
	return out, nil
}

func (m *Memory) AddEvent(_ context.Context, e Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	e.Time = e.Time.UTC()
	m.events[e.Node] = append(m.events[e.Node], e)
	return nil
}

func (m *Memory) Events(_ context.Context, node string, limit int) ([]Event, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ev := m.events[node]
	if limit > 0 && len(ev) > limit {
		ev = ev[len(ev)-limit:]
	}
	return slices.Clone(ev), nil
}

func (m *Memory) Status(_ context.Context) ([]Event, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Event, 0, len(m.events))
	for _, ev := range m.events {
		if len(ev) > 0 {
			out = append(out, ev[len(ev)-1])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

func (m *Memory) PruneEvents(_ context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for node, ev := range m.events {
		last, deploy := len(ev)-1, -1
		for i, e := range ev {
			if e.Stage == DeployStage {
				deploy = i
			}
		}
		kept := ev[:0:0]
		for i, e := range ev {
			if i == last || i == deploy || !e.Time.Before(before) {
				kept = append(kept, e)
			}
		}
		n += int64(len(ev) - len(kept))
		m.events[node] = kept
	}
	return n, nil
}

func (m *Memory) Revision(_ context.Context) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.revision, nil
}

func (m *Memory) Secret(_ context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.secret == nil {
		s, err := NewSecret()
		if err != nil {
			return nil, err
		}
		m.secret = s
	}
	return bytes.Clone(m.secret), nil
}

type memToken struct {
	AdminToken
	revoked bool
}

func (m *Memory) PutAdminToken(_ context.Context, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tokens[hash]; ok {
		if t.revoked {
			return ErrRevoked
		}
		return nil
	}
	m.addToken(hash, "")
	return nil
}

// addToken needs m.mu held.
func (m *Memory) addToken(hash, name string) AdminToken {
	m.tokenID++
	t := AdminToken{ID: m.tokenID, Hash: hash, Name: name, Created: m.now().UTC()}
	m.tokens[hash] = &memToken{AdminToken: t}
	return t
}

func (m *Memory) AdminToken(_ context.Context, hash string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tokens[hash]
	switch {
	case !ok:
		return ErrNotFound
	case t.revoked:
		return ErrRevoked
	}
	return nil
}

func (m *Memory) CreateAdminToken(_ context.Context, hash, name string) (AdminToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tokens[hash]; ok {
		return AdminToken{}, ErrConflict // random tokens do not collide
	}
	return m.addToken(hash, name), nil
}

func (m *Memory) AdminTokens(_ context.Context) ([]AdminToken, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []AdminToken{}
	for _, t := range m.tokens {
		if !t.revoked {
			out = append(out, t.AdminToken)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *Memory) RevokeAdminToken(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.tokens {
		if t.ID == id && !t.revoked {
			t.revoked = true
			return nil
		}
	}
	return ErrNotFound
}
