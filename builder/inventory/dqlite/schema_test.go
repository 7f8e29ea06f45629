package dqlite

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestMigrate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	// Open migrated already; running again is a no-op.
	if err := migrate(ctx, s.db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version: got %d, %v; want %d", v, err, len(migrations))
	}
	// A database written by a newer bainoded is refused, not downgraded.
	if _, err := s.db.ExecContext(ctx, `UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, s.db); err == nil || !strings.Contains(err.Error(), "newer than this bainoded") {
		t.Errorf("newer schema: got %v", err)
	}
}

func TestClassify(t *testing.T) {
	cases := map[error]failure{
		nil:                             permanent,
		context.DeadlineExceeded:        permanent,
		errString("database is locked"): busy,
		errString("failed to create dqlite connection: no available dqlite leader server found"): leader,
		errString("UNIQUE constraint failed: nodes.hostname"):                                    permanent,
	}
	for err, want := range cases {
		if got := classify(err); got != want {
			t.Errorf("classify(%v): got %d, want %d", err, got, want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
