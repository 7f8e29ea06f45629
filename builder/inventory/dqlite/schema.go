package dqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] upgrades the schema from version i to i+1. Append only:
// released entries are never edited, since members record the version they
// applied and skip what they have.
var migrations = [][]string{
	{ // 1: initial schema
		`CREATE TABLE sites (
			id      INTEGER PRIMARY KEY AUTOINCREMENT,
			yaml    BLOB    NOT NULL,
			created INTEGER NOT NULL)`,
		`CREATE TABLE nodes (
			hostname   TEXT PRIMARY KEY,
			ip         TEXT NOT NULL DEFAULT '',
			role       TEXT NOT NULL DEFAULT '',
			overrides  BLOB,
			token_hash TEXT NOT NULL DEFAULT '')`,
		`CREATE TABLE node_macs (
			mac      TEXT PRIMARY KEY,
			hostname TEXT    NOT NULL,
			pos      INTEGER NOT NULL)`,
		`CREATE INDEX node_macs_hostname ON node_macs (hostname)`,
		`CREATE TABLE events (
			id     INTEGER PRIMARY KEY AUTOINCREMENT,
			node   TEXT    NOT NULL,
			stage  TEXT    NOT NULL,
			result TEXT    NOT NULL,
			time   INTEGER NOT NULL,
			detail TEXT    NOT NULL)`,
		`CREATE INDEX events_node ON events (node, id)`,
		`CREATE TABLE admin_tokens (
			hash    TEXT PRIMARY KEY,
			created INTEGER NOT NULL)`,
		// meta holds 'revision' (bumped on site and node writes) and 'secret'.
		`CREATE TABLE meta (
			key   TEXT PRIMARY KEY,
			value BLOB NOT NULL)`,
		`INSERT INTO meta (key, value) VALUES ('revision', 0)`,
	},
	{ // 2: node token generations, named and revocable admin tokens, event pruning
		// Existing nodes keep generation 0, the derivation their tokens had.
		`ALTER TABLE nodes ADD COLUMN token_gen INTEGER NOT NULL DEFAULT 0`,
		// revoked is when the token was revoked (0: active); revoked rows
		// stay so a token file cannot bring their token back.
		`CREATE TABLE admin_tokens_v2 (
			id      INTEGER PRIMARY KEY AUTOINCREMENT,
			hash    TEXT    NOT NULL UNIQUE,
			name    TEXT    NOT NULL DEFAULT '',
			created INTEGER NOT NULL,
			revoked INTEGER NOT NULL DEFAULT 0)`,
		`INSERT INTO admin_tokens_v2 (hash, created) SELECT hash, created FROM admin_tokens ORDER BY created, hash`,
		`DROP TABLE admin_tokens`,
		`ALTER TABLE admin_tokens_v2 RENAME TO admin_tokens`,
		`CREATE INDEX events_time ON events (time)`,
	},
	{ // 3: event ids, so a batch retried after a leader change is stored once
		// Older rows keep NULL, which a UNIQUE index allows many times.
		`ALTER TABLE events ADD COLUMN uid BLOB`,
		`CREATE UNIQUE INDEX events_uid ON events (uid)`,
	},
}

// migrate applies missing migrations and records the new version in one
// transaction, so concurrent starts of several members apply each step once.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&version)
	switch {
	case err == sql.ErrNoRows:
		version = 0
	case err != nil:
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this bainoded (%d)", version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	for v := version; v < len(migrations); v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("schema version %d: %w", v+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_version (id, version) VALUES (1, ?)
		 ON CONFLICT (id) DO UPDATE SET version = excluded.version`, len(migrations)); err != nil {
		return err
	}
	return tx.Commit()
}
