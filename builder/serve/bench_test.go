package serve_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/serve"
)

// BenchmarkUserData measures cached user-data GETs over loopback HTTP with
// many concurrent clients, each on its own keep-alive connection. Client
// and server share the machine, so the numbers are a floor.
func BenchmarkUserData(b *testing.B) {
	for _, clients := range []int{64, 256, 1024} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			// bainoded's default: ask the store for changes once a second.
			f := newFixture(b, func(c *serve.Config) { c.RevisionTTL = time.Second })
			tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			url := f.srv.URL + "/nocloud/52:54:00:aa:bb:01/user-data"
			get := func() error {
				resp, err := client.Get(url)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}
			if err := get(); err != nil { // fill the cache
				b.Fatal(err)
			}
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if err := get(); err != nil {
							failed.Add(1)
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d requests failed", n)
			}
			reportLatency(b, lat, elapsed)
		})
	}
}

func reportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkHandlerUserData is the server's own cost of a cached user-data
// GET, without sockets or an HTTP client.
func BenchmarkHandlerUserData(b *testing.B) {
	f := newFixture(b, func(c *serve.Config) { c.RevisionTTL = time.Second })
	h := serve.New(serve.Config{Store: f.store, Renderer: f.render, RevisionTTL: time.Second})
	req := httptest.NewRequest("GET", "/nocloud/52:54:00:aa:bb:01/user-data", nil)
	req.RemoteAddr = "127.0.0.1:4000"
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
}
