package serve

import (
	"context"
	"sync"
)

// nodeTokens caches node token hashes for the render cache's current
// stamp, so a report or phone_home costs one inventory write and no read:
// in a cluster, reads go to the leader too. A token rotated on another
// member takes effect here within RevisionTTL.
type nodeTokens struct {
	mu     sync.Mutex
	at     stamp
	hashes map[string]string
}

// tokenHash returns host's stored token hash; unknown hosts are not cached,
// so probing names cannot grow the map.
func (s *server) tokenHash(ctx context.Context, host string) (string, error) {
	t := &s.tokens
	now, _, err := s.cache.revision(ctx, s.store)
	if err == nil {
		t.mu.Lock()
		h, ok := t.hashes[host]
		fresh := ok && t.at == now
		t.mu.Unlock()
		if fresh {
			return h, nil
		}
	}
	n, err := s.store.Node(ctx, host)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	if t.at != now || t.hashes == nil {
		t.at, t.hashes = now, map[string]string{}
	}
	t.hashes[host] = n.TokenHash
	t.mu.Unlock()
	return n.TokenHash, nil
}
