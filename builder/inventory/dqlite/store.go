// Package dqlite is the replicated inventory.Store behind bainoded. It
// embeds a dqlite node through go-dqlite's app package: a lone node by
// default, or a raft cluster when members are given an address and peers to
// join. All SQL goes through database/sql on the dqlite driver, which sends
// it to the current leader, so any member can serve reads and writes.
//
// Building needs cgo, libdqlite-dev, libraft-dev, libuv1-dev, libsqlite3-dev
// and -tags libsqlite3.
package dqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/canonical/go-dqlite/app"
	"github.com/canonical/go-dqlite/client"

	"github.com/lablup/bainode/builder/inventory"
)

// dbName is the database file inside the dqlite data directory.
const dbName = "bainode.db"

// Config says where the node keeps its data and how it finds its peers.
type Config struct {
	// Dir holds the raft log, snapshots and go-dqlite's info.yaml and
	// cluster.yaml; it is created 0700 if missing.
	Dir string
	// Address is this member's HOST:PORT for raft and SQL traffic. It must
	// be reachable by the peers and stay the same across restarts. Empty
	// means a lone node on a private abstract socket.
	Address string
	// Join lists members of an existing cluster; only used the first time
	// a new member starts. A member started without Join bootstraps a new
	// cluster.
	Join []string
	// Logger receives go-dqlite's warnings; nil discards them.
	Logger *slog.Logger
	// ReadyTimeout bounds joining and electing at startup (default 1m).
	ReadyTimeout time.Duration
	// NetworkLatency is the expected one-way latency between members; raft
	// derives its heartbeat and election timeouts, and so the failover
	// time, from it. Zero keeps dqlite's default. All members should agree.
	NetworkLatency time.Duration
	// TLS, when set, encrypts and authenticates cluster traffic (see
	// LoadTLS). All members must agree; it needs an Address.
	TLS *TLS
}

// Store implements inventory.Store and inventory.Clusterer.
type Store struct {
	app  *app.App
	db   *sql.DB
	lock *os.File // see lockDir
	// wlock lets one write at a time leave this process. The leader runs
	// one write transaction at a time and answers SQLITE_BUSY to the rest,
	// so queueing here is cheaper than colliding there.
	wlock  chan struct{}
	events eventQueue
}

var (
	_ inventory.Store     = (*Store)(nil)
	_ inventory.Clusterer = (*Store)(nil)
)

// Open starts the local dqlite node, waits until it has joined the cluster
// and a leader exists, and applies pending schema migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("dqlite: no data directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("dqlite: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	fresh := false
	if _, err := os.Stat(filepath.Join(cfg.Dir, "info.yaml")); errors.Is(err, os.ErrNotExist) {
		fresh = true
	}
	addr := cfg.Address
	if fresh && addr == "" {
		if len(cfg.Join) > 0 {
			return nil, errors.New("dqlite: joining a cluster needs this member's own address")
		}
		// app.New would otherwise pick the first public IP at port 9000
		// and expose a lone node's database to the network.
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		addr = "@bainoded-" + hex.EncodeToString(b)
	}

	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []app.Option{app.WithLogFunc(logFunc(log))}
	if addr != "" {
		opts = append(opts, app.WithAddress(addr))
	}
	if fresh && len(cfg.Join) > 0 {
		opts = append(opts, app.WithCluster(cfg.Join))
	}
	if cfg.NetworkLatency > 0 {
		opts = append(opts, app.WithNetworkLatency(cfg.NetworkLatency))
	}
	if cfg.TLS != nil {
		if addr == "" || addr[0] == '@' {
			return nil, errors.New("dqlite: cluster TLS needs this member's own address")
		}
		opts = append(opts, app.WithTLS(cfg.TLS.Listen, cfg.TLS.Dial))
	}
	a, err := app.New(cfg.Dir, opts...)
	if err != nil {
		return nil, fmt.Errorf("dqlite: start node: %w", err)
	}
	s := &Store{app: a, lock: lock, wlock: make(chan struct{}, 1)}

	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := a.Ready(rctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("dqlite: node not ready: %w", err)
	}
	db, err := a.Open(rctx, dbName)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("dqlite: open database: %w", err)
	}
	s.db = db
	if err := s.retry(rctx, func(ctx context.Context) error { return migrate(ctx, db) }); err != nil {
		s.Close(context.Background())
		return nil, fmt.Errorf("dqlite: migrate schema: %w", err)
	}
	ok = true
	return s, nil
}

// Close hands leadership and voting rights to another member when there is
// one, then stops the node. Handover keeps a graceful shutdown from costing
// the cluster an election timeout.
func (s *Store) Close(ctx context.Context) error {
	var errs []error
	if s.db != nil {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.app.Handover(hctx); err != nil {
			errs = append(errs, fmt.Errorf("handover: %w", err))
		}
		cancel()
		errs = append(errs, s.db.Close())
	}
	errs = append(errs, s.app.Close())
	s.lock.Close()
	return errors.Join(errs...)
}

// Address is this member's raft address.
func (s *Store) Address() string { return s.app.Address() }

// Members lists the cluster as the leader sees it.
func (s *Store) Members(ctx context.Context) ([]inventory.Member, error) {
	var out []inventory.Member
	err := s.onLeader(ctx, func(ctx context.Context, _ *client.Client, leader *client.NodeInfo, nodes []client.NodeInfo) error {
		out = out[:0]
		for _, n := range nodes {
			out = append(out, inventory.Member{ID: n.ID, Address: n.Address, Role: n.Role.String(),
				Leader: leader != nil && leader.ID == n.ID})
		}
		return nil
	})
	return out, err
}

func logFunc(log *slog.Logger) client.LogFunc {
	return func(l client.LogLevel, format string, a ...interface{}) {
		level := slog.LevelDebug
		switch l {
		case client.LogInfo:
			level = slog.LevelInfo
		case client.LogWarn:
			level = slog.LevelWarn
		case client.LogError:
			level = slog.LevelError
		}
		log.Log(context.Background(), level, "dqlite: "+fmt.Sprintf(format, a...))
	}
}
