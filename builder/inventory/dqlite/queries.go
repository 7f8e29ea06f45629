package dqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/lablup/bainode/builder/inventory"
)

// write runs op under the process-wide write lock, retried.
func (s *Store) write(ctx context.Context, op func(context.Context) error) error {
	return s.retry(ctx, func(ctx context.Context) error {
		select {
		case s.wlock <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-s.wlock }()
		return op(ctx)
	})
}

// inTx runs fn in a write transaction, retried as a whole.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.write(ctx, func(ctx context.Context) error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(ctx, tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

func bump(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE meta SET value = value + 1 WHERE key = 'revision'`)
	return err
}

func (s *Store) PutSite(ctx context.Context, yaml []byte) (inventory.SiteVersion, error) {
	v := inventory.SiteVersion{YAML: yaml, Created: time.Now().UTC()}
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO sites (yaml, created) VALUES (?, ?)`, yaml, v.Created.UnixNano())
		if err != nil {
			return err
		}
		if v.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		return bump(ctx, tx)
	})
	return v, err
}

func (s *Store) Site(ctx context.Context) (inventory.SiteVersion, error) {
	h, err := s.SiteHistory(ctx, 1)
	if err != nil {
		return inventory.SiteVersion{}, err
	}
	if len(h) == 0 {
		return inventory.SiteVersion{}, inventory.ErrNotFound
	}
	return h[0], nil
}

func (s *Store) SiteHistory(ctx context.Context, limit int) ([]inventory.SiteVersion, error) {
	if limit <= 0 {
		limit = -1 // no limit in SQLite
	}
	var out []inventory.SiteVersion
	err := s.retry(ctx, func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.db.QueryContext(ctx, `SELECT id, yaml, created FROM sites ORDER BY id DESC LIMIT ?`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v inventory.SiteVersion
			var created int64
			if err := rows.Scan(&v.ID, &v.YAML, &created); err != nil {
				return err
			}
			v.Created = time.Unix(0, created).UTC()
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}

func (s *Store) PutNode(ctx context.Context, n inventory.Node) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, mac := range n.MACs {
			var owner string
			err := tx.QueryRowContext(ctx, `SELECT hostname FROM node_macs WHERE mac = ?`, mac).Scan(&owner)
			if err == nil && owner != n.Hostname {
				return inventory.ErrConflict
			}
			if err != nil && err != sql.ErrNoRows {
				return err
			}
		}
		// The token columns are only set on insert: see Store.PutNode.
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO nodes (hostname, ip, role, overrides, token_hash, token_gen) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (hostname) DO UPDATE SET ip = excluded.ip, role = excluded.role,
				overrides = excluded.overrides`,
			n.Hostname, n.IP, n.Role, n.Overrides, n.TokenHash, n.TokenGen); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM node_macs WHERE hostname = ?`, n.Hostname); err != nil {
			return err
		}
		for i, mac := range n.MACs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO node_macs (mac, hostname, pos) VALUES (?, ?, ?)`,
				mac, n.Hostname, i); err != nil {
				return err
			}
		}
		return bump(ctx, tx)
	})
}

func (s *Store) SetNodeToken(ctx context.Context, hostname string, gen int64, hash string) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nodes SET token_gen = ?, token_hash = ? WHERE hostname = ?`,
			gen, hash, hostname)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return inventory.ErrNotFound
		}
		return bump(ctx, tx)
	})
}

func (s *Store) DeleteNode(ctx context.Context, hostname string) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE hostname = ?`, hostname)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return inventory.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM node_macs WHERE hostname = ?`, hostname); err != nil {
			return err
		}
		return bump(ctx, tx)
	})
}

func (s *Store) Node(ctx context.Context, hostname string) (inventory.Node, error) {
	return s.oneNode(ctx, `WHERE n.hostname = ?`, hostname)
}

func (s *Store) NodeByMAC(ctx context.Context, mac string) (inventory.Node, error) {
	return s.oneNode(ctx, `WHERE n.hostname = (SELECT hostname FROM node_macs WHERE mac = ?)`, mac)
}

func (s *Store) oneNode(ctx context.Context, where string, arg any) (inventory.Node, error) {
	nodes, err := s.queryNodes(ctx, where, arg)
	if err != nil {
		return inventory.Node{}, err
	}
	if len(nodes) == 0 {
		return inventory.Node{}, inventory.ErrNotFound
	}
	return nodes[0], nil
}

func (s *Store) Nodes(ctx context.Context) ([]inventory.Node, error) {
	return s.queryNodes(ctx, "")
}

// queryNodes reads nodes and their MACs in one statement, so a node and its
// MACs always come from the same snapshot.
func (s *Store) queryNodes(ctx context.Context, where string, args ...any) ([]inventory.Node, error) {
	q := `SELECT n.hostname, n.ip, n.role, n.overrides, n.token_hash, n.token_gen, m.mac
		FROM nodes n LEFT JOIN node_macs m ON m.hostname = n.hostname ` + where +
		` ORDER BY n.hostname, m.pos`
	var out []inventory.Node
	err := s.retry(ctx, func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n inventory.Node
			var mac sql.NullString
			if err := rows.Scan(&n.Hostname, &n.IP, &n.Role, &n.Overrides, &n.TokenHash, &n.TokenGen, &mac); err != nil {
				return err
			}
			if len(out) == 0 || out[len(out)-1].Hostname != n.Hostname {
				out = append(out, n)
			}
			if mac.Valid {
				last := &out[len(out)-1]
				last.MACs = append(last.MACs, mac.String)
			}
		}
		return rows.Err()
	})
	return out, err
}

func (s *Store) Events(ctx context.Context, node string, limit int) ([]inventory.Event, error) {
	if limit <= 0 {
		limit = -1
	}
	return s.queryEvents(ctx, `SELECT * FROM (
			SELECT id, node, stage, result, time, detail FROM events WHERE node = ? ORDER BY id DESC LIMIT ?
		) ORDER BY id`, node, limit)
}

func (s *Store) Status(ctx context.Context) ([]inventory.Event, error) {
	return s.queryEvents(ctx, `SELECT e.id, e.node, e.stage, e.result, e.time, e.detail
		FROM events e JOIN (SELECT MAX(id) AS id FROM events GROUP BY node) l ON e.id = l.id
		ORDER BY e.node`)
}

// pruneBatch bounds the rows one prune transaction deletes, so a large
// backlog becomes several modest raft entries instead of one huge one.
const pruneBatch = 5000

func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(ctx context.Context) error {
			res, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE id IN (
				SELECT id FROM events WHERE time < ?
					AND id NOT IN (SELECT MAX(id) FROM events GROUP BY node)
					AND id NOT IN (SELECT MAX(id) FROM events WHERE stage = ? GROUP BY node)
				LIMIT ?)`, before.UnixNano(), inventory.DeployStage, pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

func (s *Store) queryEvents(ctx context.Context, q string, args ...any) ([]inventory.Event, error) {
	var out []inventory.Event
	err := s.retry(ctx, func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e inventory.Event
			var id, t int64
			if err := rows.Scan(&id, &e.Node, &e.Stage, &e.Result, &t, &e.Detail); err != nil {
				return err
			}
			e.Time = time.Unix(0, t).UTC()
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.retry(ctx, func(ctx context.Context) error {
		return s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'revision'`).Scan(&rev)
	})
	return rev, err
}

func (s *Store) Secret(ctx context.Context) ([]byte, error) {
	fresh, err := inventory.NewSecret()
	if err != nil {
		return nil, err
	}
	var key []byte
	// INSERT OR IGNORE makes concurrent first calls on two members agree.
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?)`, fresh); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'secret'`).Scan(&key)
	})
	return key, err
}

func (s *Store) PutAdminToken(ctx context.Context, hash string) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO admin_tokens (hash, created) VALUES (?, ?)`,
			hash, time.Now().UnixNano()); err != nil {
			return err
		}
		return adminToken(ctx, tx, hash)
	})
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func adminToken(ctx context.Context, q querier, hash string) error {
	var revoked int64
	err := q.QueryRowContext(ctx, `SELECT revoked FROM admin_tokens WHERE hash = ?`, hash).Scan(&revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return inventory.ErrNotFound
	case err != nil:
		return err
	case revoked != 0:
		return inventory.ErrRevoked
	}
	return nil
}

func (s *Store) AdminToken(ctx context.Context, hash string) error {
	return s.retry(ctx, func(ctx context.Context) error { return adminToken(ctx, s.db, hash) })
}

func (s *Store) CreateAdminToken(ctx context.Context, hash, name string) (inventory.AdminToken, error) {
	t := inventory.AdminToken{Hash: hash, Name: name, Created: time.Now().UTC()}
	err := s.write(ctx, func(ctx context.Context) error {
		// A retried insert that had committed finds its own row; random
		// tokens collide with nothing else.
		err := s.db.QueryRowContext(ctx, `SELECT id FROM admin_tokens WHERE hash = ? AND name = ? AND revoked = 0`,
			hash, name).Scan(&t.ID)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := s.db.ExecContext(ctx, `INSERT INTO admin_tokens (hash, name, created) VALUES (?, ?, ?)`,
			hash, name, t.Created.UnixNano())
		if err != nil {
			return err
		}
		t.ID, err = res.LastInsertId()
		return err
	})
	return t, err
}

func (s *Store) AdminTokens(ctx context.Context) ([]inventory.AdminToken, error) {
	var out []inventory.AdminToken
	err := s.retry(ctx, func(ctx context.Context) error {
		out = []inventory.AdminToken{}
		rows, err := s.db.QueryContext(ctx, `SELECT id, hash, name, created FROM admin_tokens WHERE revoked = 0 ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t inventory.AdminToken
			var created int64
			if err := rows.Scan(&t.ID, &t.Hash, &t.Name, &created); err != nil {
				return err
			}
			t.Created = time.Unix(0, created).UTC()
			out = append(out, t)
		}
		return rows.Err()
	})
	return out, err
}

func (s *Store) RevokeAdminToken(ctx context.Context, id int64) error {
	return s.write(ctx, func(ctx context.Context) error {
		res, err := s.db.ExecContext(ctx, `UPDATE admin_tokens SET revoked = ? WHERE id = ? AND revoked = 0`,
			time.Now().UnixNano(), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return inventory.ErrNotFound
		}
		return nil
	})
}
