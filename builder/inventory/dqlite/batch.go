package dqlite

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

// maxBatch keeps one INSERT within the 255 parameters a dqlite request
// can carry (6 per event).
const maxBatch = 42

// eventQueue gathers events that arrive while a write is in flight, so the
// next write carries all of them: one raft round per batch instead of one
// per event (group commit). A fleet booting together reports in bursts.
type eventQueue struct {
	mu       sync.Mutex
	pending  []*pendingEvent
	flushing bool
}

type pendingEvent struct {
	e inventory.Event
	// uid makes a retried INSERT a no-op for rows a cut-off commit already
	// stored: a leader change can apply a write without acknowledging it.
	uid  []byte
	done chan error
}

// AddEvent returns once the event is committed with its batch, stored once
// even if the batch had to be retried. If ctx ends first the event may
// still be stored.
func (s *Store) AddEvent(ctx context.Context, e inventory.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	p := &pendingEvent{e: e, uid: newUID(), done: make(chan error, 1)}
	q := &s.events
	q.mu.Lock()
	q.pending = append(q.pending, p)
	if !q.flushing {
		q.flushing = true
		go s.flushEvents()
	}
	q.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushEvents writes queued events until the queue is empty.
func (s *Store) flushEvents() {
	q := &s.events
	for {
		var batch []*pendingEvent
		ctx, cancel := context.WithTimeout(context.Background(), defaultOpTTL)
		err := s.write(ctx, func(ctx context.Context) error {
			// Events that came while another member held the leader's
			// write lock join this attempt, so contention grows batches.
			batch = q.take(batch)
			if len(batch) == 0 {
				return nil
			}
			stmt, args := insertEvents(batch)
			_, err := s.db.ExecContext(ctx, stmt, args...)
			return err
		})
		cancel()
		if len(batch) == 0 {
			return
		}
		for _, p := range batch {
			p.done <- err
		}
	}
}

// take tops batch up from the queue; when both are empty it marks the
// queue idle so the next AddEvent starts a flusher.
func (q *eventQueue) take(batch []*pendingEvent) []*pendingEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.pending), maxBatch-len(batch))
	batch = append(batch, q.pending[:n]...)
	q.pending = q.pending[n:]
	if len(batch) == 0 {
		q.flushing = false
	}
	return batch
}

func insertEvents(batch []*pendingEvent) (string, []any) {
	var q strings.Builder
	q.WriteString(`INSERT OR IGNORE INTO events (node, stage, result, time, detail, uid) VALUES `)
	args := make([]any, 0, 6*len(batch))
	for i, p := range batch {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, p.e.Node, p.e.Stage, p.e.Result, p.e.Time.UnixNano(), p.e.Detail, p.uid)
	}
	return q.String(), args
}

// newUID returns 128 random bits: unique enough among a fleet's events.
func newUID() []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return b
}
