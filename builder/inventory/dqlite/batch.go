package dqlite

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

// maxBatch keeps one INSERT within the 255 parameters a dqlite request
// can carry (5 per event).
const maxBatch = 50

// eventQueue gathers events that arrive while a write is in flight, so the
// next write carries all of them: one raft round per batch instead of one
// per event (group commit). A fleet booting together reports in bursts.
type eventQueue struct {
	mu       sync.Mutex
	pending  []*pendingEvent
	flushing bool
}

type pendingEvent struct {
	e    inventory.Event
	done chan error
}

// AddEvent returns once the event is committed with its batch. If ctx ends
// first the event may still be stored, as with any write cut off by a
// leader change: delivery is at least once.
func (s *Store) AddEvent(ctx context.Context, e inventory.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	p := &pendingEvent{e: e, done: make(chan error, 1)}
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
	q.WriteString(`INSERT INTO events (node, stage, result, time, detail) VALUES `)
	args := make([]any, 0, 5*len(batch))
	for i, p := range batch {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?, ?, ?, ?, ?)")
		args = append(args, p.e.Node, p.e.Stage, p.e.Result, p.e.Time.UnixNano(), p.e.Detail)
	}
	return q.String(), args
}
