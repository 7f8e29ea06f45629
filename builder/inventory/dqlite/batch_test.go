package dqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

// TestEventBatchRetriedOnce replays a batch whose commit was applied, as a
// retry after a lost acknowledgement does: nothing is stored twice.
func TestEventBatchRetriedOnce(t *testing.T) {
	s, ctx := openLone(t)
	var batch []*pendingEvent
	for i := range maxBatch {
		batch = append(batch, &pendingEvent{uid: newUID(),
			e: inventory.Event{Node: "n", Stage: fmt.Sprint(i), Result: "start", Time: time.Now()}})
	}
	stmt, args := insertEvents(batch)
	for range 2 {
		if _, err := s.db.ExecContext(ctx, stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
	// A new event with the same content is a different event.
	if err := s.AddEvent(ctx, batch[0].e); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Events(ctx, "n", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != maxBatch+1 {
		t.Fatalf("stored %d events, want %d", len(ev), maxBatch+1)
	}
}
