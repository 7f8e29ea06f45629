package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/inventory"
)

// pruneEvery is how often members prune. Each member prunes on its own:
// the DELETE is idempotent, so no leader election is needed, and a few
// members deleting the same rows cost only empty transactions.
func pruneEvery(retention time.Duration) time.Duration {
	return min(max(retention/24, time.Minute), time.Hour)
}

// startPruning deletes events older than retention now and then every
// pruneEvery, until ctx ends or the returned stop is called; stop waits
// for a prune in progress, so call it before closing the store.
// Retention 0 keeps every event.
func startPruning(ctx context.Context, store inventory.Store, retention time.Duration, log *slog.Logger) (stop func()) {
	if retention <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(pruneEvery(retention))
		defer t.Stop()
		for {
			pruneOnce(ctx, store, time.Now().Add(-retention), log)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// pruneOnce deletes events from before cutoff, keeping each node's latest.
func pruneOnce(ctx context.Context, store inventory.Store, cutoff time.Time, log *slog.Logger) {
	n, err := store.PruneEvents(ctx, cutoff)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("pruning events", "err", err) // the next round tries again
	case n > 0:
		log.Info("pruned events", "count", n, "before", cutoff.UTC().Format(time.RFC3339))
	}
}

// checkRetention is the flag's Action: it refuses negative durations,
// which would prune the future.
func checkRetention(_ *cli.Context, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--event-retention %s: must be 0 (keep everything) or positive", d)
	}
	return nil
}
