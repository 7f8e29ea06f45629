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
