package deploy

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// rangeReader reads one immutable URL from start to end, resuming with an
// HTTP Range request wherever the transfer breaks (a cut connection, a
// restarted server), and hashes the bytes it hands out. It gives up only
// when no byte has arrived for Stall.
type rangeReader struct {
	ctx    context.Context
	client *http.Client
	url    string
	size   int64 // expected length
	sum    hash.Hash
	stall  time.Duration
	logf   func(format string, a ...any)

	off     int64
	done    atomic.Int64 // off, for progress on the other side of the decoder
	body    io.ReadCloser
	resumes int
	last    time.Time // last progress
}

func (r *rangeReader) open() error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	if r.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	switch {
	case r.off == 0 && resp.StatusCode == http.StatusOK:
	case r.off > 0 && resp.StatusCode == http.StatusPartialContent:
		start, _, _ := strings.Cut(strings.TrimPrefix(resp.Header.Get("Content-Range"), "bytes "), "-")
		if n, err := strconv.ParseInt(start, 10, 64); err != nil || n != r.off {
			resp.Body.Close()
			return permanent(fmt.Errorf("%s: resume at %d answered with Content-Range %q", r.url, r.off, resp.Header.Get("Content-Range")))
		}
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden ||
		resp.StatusCode == http.StatusRequestedRangeNotSatisfiable || r.off > 0 && resp.StatusCode == http.StatusOK:
		resp.Body.Close()
		return permanent(fmt.Errorf("%s: %s", r.url, resp.Status))
	default:
		resp.Body.Close()
		return fmt.Errorf("%s: %s", r.url, resp.Status)
	}
	r.body = resp.Body
	return nil
}

type permanentError struct{ error }

func permanent(err error) error { return permanentError{err} }

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.last.IsZero() {
		r.last = time.Now()
	}
	wait := time.Second
	for {
		if r.off >= r.size {
			if r.body != nil {
				r.body.Close()
				r.body = nil
			}
			return 0, io.EOF
		}
		if r.body == nil {
			err := r.open()
			if err != nil {
				var pe permanentError
				if errors.As(err, &pe) {
					return 0, pe.error
				}
				if time.Since(r.last) > r.stall {
					return 0, fmt.Errorf("no progress for %s: %w", r.stall, err)
				}
				r.logf("download: %v; retrying in %s", err, wait)
				select {
				case <-r.ctx.Done():
					return 0, r.ctx.Err()
				case <-time.After(wait):
				}
				wait = min(2*wait, 10*time.Second)
				continue
			}
			if r.off > 0 {
				r.resumes++
				r.logf("download: resumed at byte %d", r.off)
			}
		}
		if int64(len(p)) > r.size-r.off {
			p = p[:r.size-r.off]
		}
		n, err := r.body.Read(p)
		if n > 0 {
			r.sum.Write(p[:n])
			r.off += int64(n)
			r.done.Store(r.off)
			r.last = time.Now()
			return n, nil
		}
		if err != nil {
			// Short of the expected size, EOF is a cut too.
			r.body.Close()
			r.body = nil
			if r.ctx.Err() != nil {
				return 0, r.ctx.Err()
			}
			r.logf("download: transfer broke at byte %d: %v", r.off, err)
		}
	}
}

func (r *rangeReader) Close() error {
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}

func (r *rangeReader) progress() (int64, int64) { return r.done.Load(), r.size }
func (r *rangeReader) digest() []byte           { return r.sum.Sum(nil) }
func (r *rangeReader) resumed() int             { return r.resumes }
