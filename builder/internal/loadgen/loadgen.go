// Package loadgen is a small HTTP/1.1 load generator for loopback
// benchmarks. It is cheap next to net/http's client, so more of a shared
// machine is left to the server under test, and it can run open loop
// (wrk2 style): requests go out on a fixed schedule and each latency counts
// from the time its request was due, so a stalled server is not hidden by
// clients that politely wait for it (coordinated omission).
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one run.
type Config struct {
	Addr     string   // host:port of the server
	Path     string   // request target, e.g. /nocloud/x/user-data
	Header   []string // extra header lines, e.g. "Accept-Encoding: gzip"
	Conns    int      // keep-alive connections, each with one request in flight
	Requests int      // total requests
	// Rate is the target requests per second over all connections; 0 runs
	// closed loop, each connection sending as soon as its last answer is in.
	Rate float64
	// Warmup sends one untimed request per connection first, so the
	// server's per-connection setup is not counted in the latencies.
	Warmup bool
}

// Result holds what a run measured.
type Result struct {
	Requests  int             // answered, whatever the status
	Errors    int             // failed to send or read, or never sent
	Status    map[int]int     // answers by status code
	BodyBytes int64           // response body bytes
	Elapsed   time.Duration   // from the first request's due time to the last answer
	Latencies []time.Duration // of answered requests, sorted
	FirstErr  error           // the first failure, if any
}

// Rate is the achieved rate of answered requests per second.
func (r *Result) Rate() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Percentile returns the latency below which fraction p (0 to 1) of the
// answers fall, or 0 if there were none.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := min(int(p*float64(len(r.Latencies))), len(r.Latencies)-1)
	return r.Latencies[i]
}

// Max is the slowest answer.
func (r *Result) Max() time.Duration { return r.Percentile(1) }

// errChunked: a benchmark target should send Content-Length; reading
// chunked bodies is not worth the code here.
var errChunked = errors.New("loadgen: chunked responses are not supported")

// Run dials cfg.Conns connections, sends cfg.Requests GETs and waits for
// the answers. Dialing happens before the clock starts.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Conns < 1 || cfg.Requests < 0 || cfg.Rate < 0 {
		return nil, fmt.Errorf("loadgen: bad config: %d conns, %d requests, rate %g", cfg.Conns, cfg.Requests, cfg.Rate)
	}
	req := request(cfg)
	conns := make([]*conn, cfg.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}()
	for i := range conns {
		c, err := dial(ctx, cfg.Addr)
		if err != nil {
			return nil, err
		}
		conns[i] = c
		if cfg.Warmup && c.roundTrip(ctx, cfg.Addr, req, time.Now()) < 0 {
			return nil, fmt.Errorf("loadgen: warmup: %w", c.err)
		}
		clear(c.status)
		c.bodyBytes = 0
	}

	// latency[i] is request i's, or -1 if it got no answer.
	latency := make([]time.Duration, cfg.Requests)
	var next atomic.Int64 // closed loop: the next request to send
	var wg sync.WaitGroup
	start := time.Now()
	for k, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; ; i += len(conns) {
				var due time.Time
				if cfg.Rate > 0 {
					// Request i is due at start + i/Rate, on connection i mod Conns.
					if i >= cfg.Requests {
						return
					}
					due = start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				} else {
					if i = int(next.Add(1) - 1); i >= cfg.Requests {
						return
					}
					due = time.Now()
				}
				if ctx.Err() != nil {
					latency[i] = -1
					continue
				}
				latency[i] = c.roundTrip(ctx, cfg.Addr, req, due)
			}
		}()
	}
	wg.Wait()

	res := &Result{Status: map[int]int{}, Elapsed: time.Since(start)}
	for _, c := range conns {
		for code, n := range c.status {
			res.Status[code] += n
		}
		res.BodyBytes += c.bodyBytes
		if res.FirstErr == nil {
			res.FirstErr = c.err
		}
	}
	res.Latencies = make([]time.Duration, 0, len(latency))
	for _, d := range latency {
		if d < 0 {
			res.Errors++
		} else {
			res.Latencies = append(res.Latencies, d)
		}
	}
	res.Requests = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res, ctx.Err()
}

func request(cfg Config) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bainode-loadgen\r\n", cfg.Path, cfg.Addr)
	for _, h := range cfg.Header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// conn is one keep-alive connection, used by one goroutine at a time.
type conn struct {
	nc        net.Conn
	r         *bufio.Reader
	status    map[int]int
	bodyBytes int64
	err       error // the first failure
}

func dial(ctx context.Context, addr string) (*conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Room for a whole seed document, so a response is one read.
	return &conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), status: map[int]int{}}, nil
}

func (c *conn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// roundTrip sends req and reads the answer, returning the time since due,
// or -1 on failure. A failed or closed connection is dialed again for the
// next request.
func (c *conn) roundTrip(ctx context.Context, addr string, req []byte, due time.Time) time.Duration {
	fail := func(err error) time.Duration {
		if c.err == nil {
			c.err = err
		}
		c.close()
		return -1
	}
	if c.nc == nil {
		nc, err := dial(ctx, addr)
		if err != nil {
			return fail(err)
		}
		c.nc, c.r = nc.nc, nc.r
	}
	if _, err := c.nc.Write(req); err != nil {
		return fail(err)
	}
	keep, err := c.readResponse()
	if err != nil {
		return fail(err)
	}
	d := time.Since(due)
	if !keep {
		c.close()
	}
	return d
}

// readResponse reads one response to a GET: status line, headers, and a
// body framed by Content-Length. It reports whether the connection stays
// open.
func (c *conn) readResponse() (keep bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return false, fmt.Errorf("loadgen: bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return false, fmt.Errorf("loadgen: bad status line %q", line)
	}
	length, keep := int64(-1), true
	for {
		line, err = c.r.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false, fmt.Errorf("loadgen: bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return false, fmt.Errorf("loadgen: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return false, errChunked
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	noBody := code == 204 || code == 304 || code/100 == 1
	if length < 0 && !noBody {
		return false, errors.New("loadgen: response without Content-Length")
	}
	if !noBody {
		n, err := c.r.Discard(int(length))
		c.bodyBytes += int64(n)
		if err != nil {
			return false, err
		}
	}
	c.status[code]++
	return keep, nil
}
