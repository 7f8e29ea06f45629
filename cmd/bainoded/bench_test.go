//go:build linux

package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkClusterPhoneHome measures phone-home writes per second on three
// bainoded processes, with concurrent writers spread over all members. Each
// write is an authenticated node lookup plus a replicated INSERT; writes
// arriving together share a transaction.
func BenchmarkClusterPhoneHome(b *testing.B) {
	c := newCluster(b, 3)
	token := c.setup(c.members[0])
	for _, writers := range []int{16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchPhoneHome(b, c, token, writers)
		})
	}
}

func benchPhoneHome(b *testing.B, c *cluster, token string, writers int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lat := make([]time.Duration, b.N)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := c.phoneHome(ctx, c.members[i%3], token, fmt.Sprintf("b-%d-%d", writers, i)); err != nil {
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
		b.Fatalf("%d writes failed", n)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkFailover measures, per iteration, the time from SIGKILL of the
// leader to the first acknowledged write sent after it; the killed member
// is restarted outside the timed part. Run with -benchtime=3x or so.
func BenchmarkFailover(b *testing.B) {
	// "" is bainoded's default; 0 is dqlite's own.
	for _, latency := range []string{"", "0", "50ms"} {
		name := "latency=default"
		var args []string
		if latency != "" {
			name, args = "latency="+latency, []string{"--network-latency", latency}
		}
		b.Run(name, func(b *testing.B) {
			c := newCluster(b, 3, args...)
			token := c.setup(c.members[0])
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var total, worst time.Duration
			for i := 0; i < b.N; i++ {
				victim := c.leader(30 * time.Second)
				killedAt := time.Now()
				c.kill(victim)
				d, err := c.probeWrite(ctx, token, killedAt)
				if err != nil {
					b.Fatal(err)
				}
				total += d
				worst = max(worst, d)
				c.start(victim)
				c.waitHealthy(victim, time.Minute)
				c.waitVoters(3, time.Minute)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/failover")
			b.ReportMetric(worst.Seconds(), "worst-s")
			b.ReportMetric(0, "ns/op") // wall time per op includes restarts
		})
	}
}
