package serve

import (
	"context"
	"sync"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

// entry is one node's rendered seed, reachable by hostname and every MAC.
type entry struct {
	node  inventory.Node
	base  string // base URL the files were rendered for
	files [4]seedFile
}

// Indexes into entry.files, by NoCloud file name.
var seedFiles = map[string]int{"user-data": 0, "meta-data": 1, "vendor-data": 2, "network-config": 3}

func newEntry(n inventory.Node, base string, f Files) *entry {
	e := &entry{node: n, base: base}
	for i, b := range [4][]byte{f.UserData, f.MetaData, f.VendorData, f.NetworkConfig} {
		e.files[i].plain = newVariant(b, "")
	}
	return e
}

// cache holds renders made at one store revision. Any site or node change
// bumps the revision and drops everything: renders are cheap next to
// reasoning about which nodes a site edit touched.
type cache struct {
	ttl      time.Duration
	mu       sync.Mutex
	rev      int64
	gen      int64 // bumped by invalidate
	valid    bool  // rev was read from the store and not invalidated since
	checking bool  // a request is asking the store for the revision
	checked  time.Time
	byKey    map[string]*entry
	flights  map[string]*flight
}

type flight struct {
	done chan struct{}
	e    *entry
	err  error
}

func newCache(ttl time.Duration) *cache {
	return &cache{ttl: ttl, byKey: map[string]*entry{}, flights: map[string]*flight{}}
}

// revisionTimeout keeps a machine read from hanging on an election when a
// cached copy could be served instead.
const revisionTimeout = time.Second

// stamp identifies the cache state a render started from; put refuses a
// render whose stamp is no longer current.
type stamp struct{ rev, gen int64 }

// revision returns the current stamp, asking the store at most once per
// TTL. If the store fails while a revision is known, that one is returned
// with stale set, so machines keep getting cached seeds while the
// inventory elects a new leader.
func (c *cache) revision(ctx context.Context, st inventory.Store) (now stamp, stale bool, err error) {
	c.mu.Lock()
	gen := c.gen
	// While one request asks the store, the others keep the known
	// revision: a thousand clients at TTL expiry ask once, and during an
	// election only one request waits.
	if c.valid && (c.checking || c.ttl > 0 && time.Since(c.checked) < c.ttl) {
		now = stamp{c.rev, gen}
		c.mu.Unlock()
		return now, false, nil
	}
	c.checking = true
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, revisionTimeout)
	defer cancel()
	r, err := st.Revision(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.checking = false
	switch {
	case err != nil:
		if c.valid {
			return stamp{c.rev, c.gen}, true, nil
		}
		return stamp{}, false, err
	case gen != c.gen:
		// invalidate ran meanwhile: r may predate the change it announced.
	case r > c.rev || !c.valid && r < c.rev:
		c.byKey = map[string]*entry{}
		c.rev, c.valid, c.checked = r, true, time.Now()
	case r == c.rev:
		c.valid, c.checked = true, time.Now()
	}
	// r < c.rev while valid: a slower, older answer; keep the newer one.
	return stamp{c.rev, gen}, false, nil
}

// invalidate drops every render after a change made through this server.
func (c *cache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.valid = false
	c.gen++
	c.byKey = map[string]*entry{}
}

func (c *cache) get(key, base string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byKey[key]; e != nil && e.base == base {
		return e
	}
	return nil
}

// put stores e under its hostname, its MACs and the key that found it,
// but only if nothing changed since the render started.
func (c *cache) put(e *entry, at stamp, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || at != (stamp{c.rev, c.gen}) {
		return
	}
	c.byKey[key] = e
	c.byKey[e.node.Hostname] = e
	for _, m := range e.node.MACs {
		c.byKey[m] = e
	}
}

// fill runs render once for concurrent misses of the same key, so a fleet
// booting together renders each node once.
func (c *cache) fill(key string, render func() (*entry, error)) (*entry, error) {
	c.mu.Lock()
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.e, f.err
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.mu.Unlock()

	f.e, f.err = render()
	c.mu.Lock()
	delete(c.flights, key)
	c.mu.Unlock()
	close(f.done)
	return f.e, f.err
}
