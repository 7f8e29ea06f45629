package dqlite

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestMigrate(t *testing.T) {
	s, ctx := openLone(t)
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

// TestMigrateFromV1 upgrades a database holding version 1 data: nodes keep
// token generation 0 (their tokens stay valid) and admin tokens stay active.
func TestMigrateFromV1(t *testing.T) {
	s, ctx := openLone(t)
	db, err := s.app.Open(ctx, "v1.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := append([]string{
		`CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`,
		`INSERT INTO schema_version (id, version) VALUES (1, 1)`,
	}, migrations[0]...)
	stmts = append(stmts,
		`INSERT INTO nodes (hostname, token_hash) VALUES ('gpu1', 'h')`,
		`INSERT INTO admin_tokens (hash, created) VALUES ('b', 2), ('a', 1)`)
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var gen int64
	var hash string
	if err := db.QueryRowContext(ctx, `SELECT token_gen, token_hash FROM nodes`).Scan(&gen, &hash); err != nil || gen != 0 || hash != "h" {
		t.Errorf("node after migration: gen %d hash %q, %v", gen, hash, err)
	}
	var ids string
	if err := db.QueryRowContext(ctx, `SELECT group_concat(hash || id || revoked, ',') FROM (SELECT * FROM admin_tokens ORDER BY id)`).Scan(&ids); err != nil || ids != "a10,b20" {
		t.Errorf("admin tokens after migration: %q, %v; want a10,b20", ids, err)
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

// openLone opens a lone store in a temporary directory for the test's
// lifetime; ctx ends with the test, or after a minute.
func openLone(t *testing.T) (*Store, context.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s, err := Open(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close(context.Background())
		cancel()
	})
	return s, ctx
}
