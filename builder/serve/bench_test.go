package serve_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/internal/loadgen"
	"github.com/lablup/bainode/builder/internal/testenv"
	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/templates"
)

// The seed server's goal: 20,000 cached user-data GETs per second with a
// p99 of at most 20 ms at 1,024 clients.
const (
	goalRate    = 20000
	benchPath   = "/nocloud/bai-a01/user-data"     // the seed URL bainode renders for bai-a01 of the cluster example
	gzipRequest = "Accept-Encoding: gzip, deflate" // what cloud-init's python-requests sends
)

// BenchmarkUserData measures cached user-data GETs of a real render (the
// cluster example's bai-a01) over loopback with cheap clients
// (builder/internal/loadgen), one keep-alive connection each:
//
//   - closed: every client sends its next request as soon as the last is
//     answered, so req/s is the most the server gives (Little's law makes
//     the latency clients times the service time, not a goal figure);
//   - open-20k: requests are due at 20,000/s over all clients, and latency
//     counts from when each was due (wrk2 style), which is what the goal
//     means.
//
// Client and server share the machine, so the figures are floors.
func BenchmarkUserData(b *testing.B) {
	addr, plain := seedServer(b)
	benchLoads(b, addr, plain)
}

// BenchmarkUserDataNginx is the same load on nginx serving the same bytes
// as static files (gzip_static for the compressed copy), one worker per
// CPU: what an operator would otherwise put in front of rendered seeds.
func BenchmarkUserDataNginx(b *testing.B) {
	nginx := testenv.Need(b, "nginx")
	_, plain := seedServer(b)
	benchLoads(b, startNginx(b, nginx, plain), plain)
}

func benchLoads(b *testing.B, addr string, plain []byte) {
	for _, enc := range []string{"plain", "gzip"} {
		want := len(plain)
		var header []string
		if enc == "gzip" {
			want, header = len(gzipBytes(b, plain)), []string{gzipRequest}
		}
		for _, clients := range []int{64, 256, 1024} {
			for _, rate := range []float64{0, goalRate} {
				loop := "closed"
				if rate > 0 {
					loop = fmt.Sprintf("open-%dk", int(rate)/1000)
				}
				b.Run(fmt.Sprintf("enc=%s/clients=%d/%s", enc, clients, loop), func(b *testing.B) {
					res, err := loadgen.Run(context.Background(), loadgen.Config{Addr: addr, Path: benchPath,
						Header: header, Conns: clients, Requests: b.N, Rate: rate, Warmup: true})
					if err != nil {
						b.Fatal(err)
					}
					if res.Errors > 0 || res.Status[200] != b.N {
						b.Fatalf("%d errors (first: %v), status %v", res.Errors, res.FirstErr, res.Status)
					}
					if res.BodyBytes != int64(b.N*want) {
						b.Fatalf("got %d body bytes, want %d per request: not the %s copy", res.BodyBytes, want, enc)
					}
					ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
					b.ReportMetric(res.Rate(), "req/s")
					b.ReportMetric(ms(res.Percentile(0.5)), "p50-ms")
					b.ReportMetric(ms(res.Percentile(0.99)), "p99-ms")
					b.ReportMetric(ms(res.Max()), "max-ms")
					b.ReportMetric(float64(want), "body-B")
				})
			}
		}
	}
}

// seedServer serves bainoded's handler on 127.0.0.1 with the real renderer
// and the cluster example, fills the cache, and returns the address and
// the plain user-data.
func seedServer(b *testing.B) (addr string, plain []byte) {
	r, err := render.New(render.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	site, err := fs.ReadFile(templates.FS, "examples/cluster.yaml")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	store := inventory.NewMemory()
	if _, err := store.PutSite(ctx, site); err != nil {
		b.Fatal(err)
	}
	if err := store.PutNode(ctx, inventory.Node{Hostname: "bai-a01", MACs: []string{"52:54:00:20:30:20"}, Role: "agent"}); err != nil {
		b.Fatal(err)
	}
	// bainoded's default: ask the store for changes once a second.
	srv := httptest.NewUnstartedServer(serve.New(serve.Config{Store: store, Renderer: serve.SiteRenderer(r), RevisionTTL: time.Second}))
	// bainoded's own server settings (cmd/bainoded).
	srv.Config.ReadHeaderTimeout, srv.Config.ReadTimeout = 10*time.Second, time.Minute
	srv.Config.WriteTimeout, srv.Config.IdleTimeout = time.Minute, 2*time.Minute
	srv.Config.MaxHeaderBytes = 64 << 10
	srv.Start()
	b.Cleanup(srv.Close)
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL + benchPath)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	plain, err = io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET user-data: %d %v", resp.StatusCode, err)
	}
	return srv.Listener.Addr().String(), plain
}

func gzipBytes(b *testing.B, plain []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(plain)
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// startNginx runs nginx in the foreground on a free 127.0.0.1 port with a
// private prefix, serving plain (and a .gz copy) at benchPath.
func startNginx(b *testing.B, nginx string, plain []byte) string {
	dir := b.TempDir()
	www := filepath.Join(dir, "www")
	file := filepath.Join(www, filepath.FromSlash(benchPath))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file, plain, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file+".gz", gzipBytes(b, plain), 0o644); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	user := "" // workers of a root nginx would run as nobody, who cannot read the temp dir
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes %d;
worker_rlimit_nofile 16384;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path %[3]s/body;
	proxy_temp_path %[3]s/proxy;
	fastcgi_temp_path %[3]s/fastcgi;
	uwsgi_temp_path %[3]s/uwsgi;
	scgi_temp_path %[3]s/scgi;
	default_type "text/plain; charset=utf-8";
	keepalive_requests 100000000; # like Go's server: no limit per connection
	keepalive_timeout 120s;
	server {
		listen %[4]s;
		root %[5]s;
		location / { gzip_static on; }
	}
}
`, user, runtime.NumCPU(), dir, addr, www)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(nginx, "-p", dir, "-c", confFile, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // fast shutdown of master and workers
		cmd.Wait()
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + benchPath)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(body, plain) {
				b.Fatalf("nginx: GET %s: %d, %d bytes", benchPath, resp.StatusCode, len(body))
			}
			return addr
		}
		if i == 100 {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx did not start: %v\n%s%s", err, stderr.String(), strings.TrimSpace(string(log)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkHandlerUserData is the server's own cost of a cached user-data
// GET, without sockets or an HTTP client.
func BenchmarkHandlerUserData(b *testing.B) {
	f := newFixture(b, func(c *serve.Config) { c.RevisionTTL = time.Second })
	h := serve.New(serve.Config{Store: f.store, Renderer: f.render, RevisionTTL: time.Second})
	for _, enc := range []string{"plain", "gzip"} {
		b.Run("enc="+enc, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/nocloud/gpu1/user-data", nil) // the seed URL bainode renders
			req.RemoteAddr = "127.0.0.1:4000"
			if enc == "gzip" {
				req.Header.Set("Accept-Encoding", "gzip, deflate")
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}
