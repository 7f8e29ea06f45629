//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canonical/go-dqlite/client"
)

// writeStream posts phone-home reports from several writers, spreading
// them over live members and retrying each one until some member
// acknowledges it.
type writeStream struct {
	c     *cluster
	token string
	stop  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	acked map[string]span // id -> its successful attempt
	fails int
}

func (c *cluster) stream(ctx context.Context, token string, writers int) *writeStream {
	s := &writeStream{c: c, token: token, stop: make(chan struct{}), acked: map[string]span{}}
	for w := 0; w < writers; w++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				for attempt := 0; ; attempt++ {
					select {
					case <-s.stop:
						return
					default:
					}
					live := c.live()
					m := live[(w+i+attempt)%len(live)]
					start := time.Now()
					rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					err := c.phoneHome(rctx, m, token, id)
					cancel()
					if err == nil {
						s.mu.Lock()
						s.acked[id] = span{start, time.Now()}
						s.mu.Unlock()
						break
					}
					s.mu.Lock()
					s.fails++
					s.mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	return s
}

func (s *writeStream) halt() { close(s.stop); s.wg.Wait() }

func (s *writeStream) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.acked) }

type span struct{ start, end time.Time }

// firstAfter is how long after t the first write sent after t was
// acknowledged. Writes sent before t are left out: the old leader may have
// committed them just before it died.
func (s *writeStream) firstAfter(t time.Time) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best time.Duration = -1
	for _, sp := range s.acked {
		if d := sp.end.Sub(t); !sp.start.Before(t) && (best < 0 || d < best) {
			best = d
		}
	}
	return best, best >= 0
}

// readStream fetches a cached seed from every live member in turn.
type readStream struct {
	stop     chan struct{}
	done     chan struct{}
	ok, fail atomic.Int64
	mu       sync.Mutex
	failures []string
	slowest  time.Duration
}

func (c *cluster) reads(ctx context.Context) *readStream {
	r := &readStream{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for i := 0; ; i++ {
			select {
			case <-r.stop:
				return
			default:
			}
			live := c.live()
			m := live[i%len(live)]
			start := time.Now()
			code, _, err := c.doCtx(ctx, m, "GET", "/nocloud/52-54-00-00-00-01/user-data", "", "", "")
			took := time.Since(start)
			if m.isDead() { // killed while we asked: not a failure of the survivors
				continue
			}
			if err != nil || code != http.StatusOK {
				r.fail.Add(1)
				r.mu.Lock()
				r.failures = append(r.failures, fmt.Sprintf("%s: %d %v", m.name, code, err))
				r.mu.Unlock()
			} else {
				r.ok.Add(1)
			}
			r.mu.Lock()
			r.slowest = max(r.slowest, took)
			r.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return r
}

func (r *readStream) halt() { close(r.stop); <-r.done }

// TestClusterFailover runs three bainoded processes, streams phone-home
// writes, SIGKILLs the leader mid-stream and checks that no acknowledged
// write is lost, that cached seeds stay readable, and that the killed
// member catches up after a restart.
func TestClusterFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newCluster(t, 3)
	token := c.setup(c.members[0])
	for _, m := range c.members { // warm every member's seed cache
		if code, _, err := c.do(m, "GET", "/nocloud/gpu1/user-data", "", "", ""); err != nil || code != 200 {
			t.Fatalf("seed via %s: %d %v", m.name, code, err)
		}
	}

	writes := c.stream(ctx, token, 4)
	reads := c.reads(ctx)
	time.Sleep(2 * time.Second)
	victim := c.leader(10 * time.Second)
	before := writes.count()
	killedAt := time.Now()
	c.kill(victim)
	t.Logf("killed leader %s after %d acknowledged writes", victim.name, before)

	failover, err := c.probeWrite(ctx, token, killedAt)
	if err != nil {
		writes.halt()
		reads.halt()
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // keep streaming on the new leader
	writes.halt()
	reads.halt()
	streamFailover, _ := writes.firstAfter(killedAt)
	t.Logf("first write after kill: %v (stream: %v); %d writes acknowledged (%d after the kill), %d failed attempts",
		failover, streamFailover, writes.count(), writes.count()-before, writes.fails)
	t.Logf("reads during the run: %d ok, %d failed, slowest %v", reads.ok.Load(), reads.fail.Load(), reads.slowest)
	if reads.fail.Load() > 0 {
		t.Errorf("cached seed reads failed on survivors: %v", reads.failures)
	}
	if writes.count() <= before {
		t.Fatalf("no writes acknowledged after the kill")
	}
	checkStored(t, c, c.live()[0], writes)

	// Restart the killed member, then make it leader: raft only hands
	// leadership to a member whose log is complete, and reads then come
	// from its copy.
	c.start(victim)
	c.waitHealthy(victim, time.Minute)
	transferTo(ctx, t, c, victim)
	if l := c.leader(10 * time.Second); l != victim {
		t.Fatalf("leader after transfer: got %s, want %s", l.name, victim.name)
	}
	checkStored(t, c, victim, writes)
}

func checkStored(t *testing.T, c *cluster, via *member, w *writeStream) {
	t.Helper()
	stored, err := c.storedIDs(via)
	if err != nil {
		t.Fatalf("reading events via %s: %v", via.name, err)
	}
	var lost []string
	for id := range w.acked {
		if !stored[id] {
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("via %s: %d of %d acknowledged writes missing: %v", via.name, len(lost), len(w.acked), lost)
	}
}

// transferTo moves leadership to m with go-dqlite's client, retrying while
// m is still catching up.
func transferTo(ctx context.Context, tb testing.TB, c *cluster, m *member) {
	tb.Helper()
	store := client.NewInmemNodeStore()
	var infos []client.NodeInfo
	for _, mm := range c.members {
		infos = append(infos, client.NodeInfo{Address: mm.raft})
	}
	store.Set(ctx, infos)
	deadline := time.Now().Add(time.Minute)
	var err error
	for time.Now().Before(deadline) {
		err = func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			cli, err := client.FindLeader(cctx, store)
			if err != nil {
				return err
			}
			defer cli.Close()
			nodes, err := cli.Cluster(cctx)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.Address == m.raft {
					return cli.Transfer(cctx, n.ID)
				}
			}
			return fmt.Errorf("%s not in the cluster", m.name)
		}()
		if err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	tb.Fatalf("transfer leadership to %s: %v", m.name, err)
}

// probeWrite sends writes one after another, from the moment of a kill,
// and returns how long after killedAt the first one was acknowledged.
func (c *cluster) probeWrite(ctx context.Context, token string, killedAt time.Time) (time.Duration, error) {
	for i := 0; time.Since(killedAt) < time.Minute; i++ {
		live := c.live()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.phoneHome(rctx, live[i%len(live)], token, fmt.Sprintf("probe-%d-%d", killedAt.UnixNano(), i))
		cancel()
		if err == nil {
			return time.Since(killedAt), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("no write succeeded within a minute of the kill")
}
