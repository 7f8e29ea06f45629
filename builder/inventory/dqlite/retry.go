package dqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	dqdriver "github.com/canonical/go-dqlite/driver"
)

// Retry bounds. A leader election takes one to a few seconds (more with a
// large network latency), so leader errors back off up to a second and the
// budget covers several elections' worth of time. SQLITE_BUSY only means
// another member's write holds the leader's lock for a raft round trip, so
// it is retried soon, with jitter so that writers do not collide again.
const (
	leaderFirst  = 20 * time.Millisecond
	leaderCap    = time.Second
	busyCap      = 10 * time.Millisecond
	retryTotal   = 15 * time.Second
	defaultOpTTL = 20 * time.Second
)

type failure int

const (
	permanent failure = iota
	busy
	leader
)

// retry runs op until it succeeds, fails with a permanent error, or the
// retry budget or ctx runs out. A transaction whose commit was cut off by a
// leader change may have been applied, so ops must tolerate running twice;
// events carry an id for that (batch.go).
func (s *Store) retry(ctx context.Context, op func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultOpTTL)
		defer cancel()
	}
	deadline := time.Now().Add(retryTotal)
	leaderDelay := leaderFirst
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		kind := classify(err)
		if err == nil || kind == permanent {
			return err
		}
		var delay time.Duration
		if kind == busy {
			delay = time.Duration(rand.Int64N(int64(min(time.Millisecond<<min(attempt, 6), busyCap)))) + time.Millisecond
		} else {
			delay = leaderDelay
			leaderDelay = min(leaderDelay*2, leaderCap)
		}
		if time.Now().Add(delay).After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// classify sorts errors into those worth retrying and the rest.
func classify(err error) failure {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return permanent
	}
	var de dqdriver.Error
	if errors.As(err, &de) {
		switch de.Code & 0xff {
		case dqdriver.ErrBusy, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return busy
		case 10: // SQLITE_IOERR: the not-leader and leadership-lost variants
			return leader
		}
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, dqdriver.ErrNoAvailableLeader) || errors.Is(err, errTransferred) {
		return leader
	}
	// Some reach us as text only, wrapped by go-dqlite with pkg/errors.
	msg := err.Error()
	for _, s := range []string{"database is locked", "checkpoint in progress"} {
		if strings.Contains(msg, s) {
			return busy
		}
	}
	for _, s := range []string{"not leader", "leadership lost", "no available dqlite leader",
		"failed to create dqlite connection"} {
		if strings.Contains(msg, s) {
			return leader
		}
	}
	return permanent
}
