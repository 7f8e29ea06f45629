// Command bainoded serves cloud-init seeds, iPXE scripts and progress
// reports for a Backend.AI fleet from an inventory replicated with dqlite.
// Unlike the bainode CLI it needs cgo: build with -tags libsqlite3 against
// libdqlite-dev, libraft-dev, libuv1-dev and libsqlite3-dev.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/inventory/dqlite"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/cmd/internal/imageflags"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args)) }

func run(args []string) int {
	if err := newApp().Run(args); err != nil {
		fmt.Fprintln(os.Stderr, "bainoded:", err)
		return 1
	}
	return 0
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "bainoded",
		Usage:   "serve cloud-init seeds and collect provisioning reports for a Backend.AI fleet",
		Version: version,
		Description: `Machines fetch seeds without credentials:
  GET  /nocloud/{mac|hostname}/{user-data,meta-data,vendor-data,network-config}
  GET  /ipxe/{mac}       boots --kernel/--initrd with ds=nocloud-net;s=.../nocloud/{mac}/
  GET  /pxe/{id}/...     the netboot trees under --pxe-dir (immutable, never a redirect)
and report progress with their own token:
  POST /report/{host}/{token}       cloud-init reporting webhook
  POST /phone-home/{host}/{token}   cloud-init phone_home
Operators use /api/v1 (nodes, node tokens, admin tokens, site, status,
cluster) on --admin-listen (loopback by default; another address needs
--tls-cert, so admin tokens never cross the network in clear) with an
admin token: the one in --admin-token-file, or one made
with "bainode tokens add". A revoked token stays revoked: bainoded refuses
to start while --admin-token-file holds one.

Events older than --event-retention are deleted (each node keeps its
latest, so status still lists every node).

A lone server keeps its inventory in --data. For a replicated inventory,
start the first member with --cluster-address and the others with
--cluster-address and --join FIRST; three members survive one failure.
Encrypt cluster traffic with --cluster-cert, --cluster-key and --cluster-ca
(make them with "bainoded cluster-cert"). Remove members with
"bainode cluster remove"; after losing a majority, see "bainoded recover".`,
		Commands: []*cli.Command{clusterCertCommand(), recoverCommand()},
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "data", Value: "/var/lib/bainoded", Usage: "inventory `DIR` (raft log and snapshots)"},
			&cli.StringFlag{Name: "listen", Value: ":8080", Usage: "HTTP(S) listen `ADDR` for machines (seeds, iPXE, reports)"},
			&cli.StringFlag{Name: "admin-listen", Value: defaultAdminListen,
				Usage: "listen `ADDR` for the admin API: HOST:PORT on loopback, unix:PATH, or any address with --tls-cert"},
			&cli.BoolFlag{Name: "single-port", Usage: "serve the admin API on --listen too, with no admin listener (admin tokens then cross the machines' network; use with --tls-cert)"},
			&cli.StringFlag{Name: "cluster-address", Usage: "this member's `HOST:PORT` for dqlite; empty: lone node"},
			&cli.StringSliceFlag{Name: "join", Usage: "`PEER` members to join on first start (HOST:PORT, repeat or comma-separate)"},
			&cli.DurationFlag{Name: "join-timeout", Value: time.Minute, Usage: "give up starting if not joined, with a leader, within `D`"},
			&cli.StringFlag{Name: "cluster-cert", Usage: "this member's cluster TLS certificate `FILE` (PEM)"},
			&cli.StringFlag{Name: "cluster-key", Usage: "this member's cluster TLS key `FILE` (PEM)"},
			&cli.StringFlag{Name: "cluster-ca", Usage: "cluster CA `FILE` (PEM); peers must present a certificate it signed"},
			&cli.StringFlag{Name: "admin-token-file", Usage: "admin token `FILE`, created 0600 if missing (default DIR/admin.token)"},
			&cli.BoolFlag{Name: "bind-ip", Usage: "serve a node's seed only to its registered IP"},
			&cli.StringFlag{Name: "base-url", Usage: "`URL` machines use to reach this server (default: from each request)"},
			&cli.StringFlag{Name: "tls-cert", Usage: "TLS certificate `FILE` (PEM)"},
			&cli.StringFlag{Name: "tls-key", Usage: "TLS key `FILE` (PEM)"},
			&cli.StringFlag{Name: "kernel", Usage: "kernel `URL` for iPXE scripts"},
			&cli.StringFlag{Name: "initrd", Usage: "initrd `URL` for iPXE scripts"},
			&cli.StringFlag{Name: "kernel-args", Value: "ip=dhcp autoinstall", Usage: "extra kernel `ARGS` for iPXE scripts"},
			&cli.StringFlag{Name: "pxe-dir", Usage: "serve the netboot trees 'bainode pxe -o DIR' wrote at GET /pxe/<id>/..."},
		}, imageflags.Flags("image mode", "console=tty0 console=ttyS0,115200n8"), []cli.Flag{
			&cli.DurationFlag{Name: "network-latency", Value: 100 * time.Millisecond,
				Usage: "expected one-way latency between members; raft's timeouts, and so failover, scale with it (about 3.5 s at 100ms, 6 s with 0: dqlite's own); raise it across sites"},
			&cli.DurationFlag{Name: "revision-ttl", Value: time.Second,
				Usage: "how long cached seeds are trusted before asking the inventory for changes made on other members"},
			&cli.DurationFlag{Name: "event-retention", Value: 30 * 24 * time.Hour, Action: checkRetention,
				Usage: "delete provisioning events older than `D`, keeping each node's latest; 0 keeps everything"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		}),
		Action: daemon,
	}
}

func daemon(c *cli.Context) error {
	log, err := newLogger(c.App.ErrWriter, c.String("log-level"))
	if err != nil {
		return err
	}
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	var tlsConfig *tls.Config
	if cert, key := c.String("tls-cert"), c.String("tls-key"); cert != "" || key != "" {
		if cert == "" || key == "" {
			return errors.New("--tls-cert and --tls-key go together")
		}
		// Load now so a bad pair fails before we join a cluster.
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return err
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	adminNet, adminAddr, err := adminListenAddr(c.String("admin-listen"), tlsConfig != nil)
	if err != nil && !c.Bool("single-port") {
		return err
	}
	if c.Bool("single-port") && c.IsSet("admin-listen") {
		return errors.New("--single-port and --admin-listen exclude each other")
	}
	clusterTLS, err := dqlite.TLSFiles(c.String("cluster-cert"), c.String("cluster-key"), c.String("cluster-ca"),
		c.String("cluster-address"))
	if err != nil {
		return err
	}
	if clusterTLS != nil && c.String("cluster-address") == "" {
		return errors.New("--cluster-cert, --cluster-key and --cluster-ca need --cluster-address")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var join []string
	for _, j := range c.StringSlice("join") {
		for _, p := range strings.Split(j, ",") {
			if p = strings.TrimSpace(p); p != "" {
				join = append(join, p)
			}
		}
	}
	store, err := dqlite.Open(ctx, dqlite.Config{Dir: c.String("data"), Address: c.String("cluster-address"),
		Join: join, Logger: log, NetworkLatency: c.Duration("network-latency"),
		ReadyTimeout: c.Duration("join-timeout"), TLS: clusterTLS})
	if err != nil {
		return err
	}
	defer func() {
		// Hand over leadership even if the HTTP side failed.
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := store.Close(cctx); err != nil {
			log.Warn("closing inventory", "err", err)
		}
	}()

	tokenFile := c.String("admin-token-file")
	if tokenFile == "" {
		tokenFile = filepath.Join(c.String("data"), "admin.token")
	}
	if err := adminToken(ctx, store, tokenFile, log); err != nil {
		return err
	}
	defer startPruning(ctx, store, c.Duration("event-retention"), log)() // stops before the store closes

	renderer, validator, err := newRenderer(version)
	if err != nil {
		return err
	}
	cfg := serve.Config{
		Store: store, Renderer: renderer, Validator: validator,
		BaseURL: c.String("base-url"), BindIP: c.Bool("bind-ip"),
		Kernel: c.String("kernel"), Initrd: c.String("initrd"), KernelArgs: c.String("kernel-args"), PXEDir: c.String("pxe-dir"),
		RevisionTTL: c.Duration("revision-ttl"), Logger: log,
	}
	if cfg.Deploy, err = deployConfig(c); err != nil {
		return err
	}
	machineH, adminH := serve.Handlers(cfg)
	var servers []*http.Server
	var listeners []net.Listener
	defer func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}()
	listen := func(network, addr string, h http.Handler, what string) error {
		ln, err := listenOn(network, addr)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		listeners = append(listeners, ln)
		servers = append(servers, newHTTPServer(h, tlsConfig, log))
		scheme := "http"
		if tlsConfig != nil {
			scheme = "https"
		}
		log.Info("serving "+what, "url", scheme+"://"+ln.Addr().String(), "member", store.Address(),
			"cluster_tls", clusterTLS != nil, "data", c.String("data"))
		return nil
	}
	if c.Bool("single-port") {
		if err := listen("tcp", c.String("listen"), serve.New(cfg), "machines and admin API"); err != nil {
			return err
		}
	} else {
		if err := listen("tcp", c.String("listen"), machineH, "machines"); err != nil {
			return err
		}
		if err := listen(adminNet, adminAddr, adminH, "admin API"); err != nil {
			return err
		}
	}

	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() {
			if tlsConfig != nil && listeners[i].Addr().Network() == "tcp" {
				errc <- srv.ServeTLS(listeners[i], "", "")
			} else {
				errc <- srv.Serve(listeners[i])
			}
		}()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
	}
	for range servers {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

func newHTTPServer(h http.Handler, tlsConfig *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // the largest body is a 4 MiB site file
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
		// No BaseContext from the signal: Shutdown lets requests in flight
		// finish their writes instead of cancelling them.
	}
}

// adminToken reads the admin token from path, creating it first if
// missing, and registers its hash in the inventory. Every member may have
// its own file; each one's token works on all of them.
func adminToken(ctx context.Context, store inventory.Store, path string, log *slog.Logger) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		tok, err := inventory.NewToken()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(tok + "\n"); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bainoded: wrote a new admin token to %s\n", path)
		b = []byte(tok)
	} else if err != nil {
		return err
	} else if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("admin token file is readable by others", "file", path, "mode", fi.Mode().Perm())
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return fmt.Errorf("%s: admin token must be at least 16 characters", path)
	}
	err = store.PutAdminToken(ctx, inventory.HashToken(tok))
	if errors.Is(err, inventory.ErrRevoked) {
		return fmt.Errorf("%s: this admin token was revoked and stays revoked; write a new token "+
			"into the file (at least 16 characters), or delete the file and bainoded writes one", path)
	}
	return err
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
