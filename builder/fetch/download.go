package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cavaliergopher/grab/v3"
)

// Options tune Download. The zero value is usable.
type Options struct {
	Jobs       int           // parallel downloads; default 4
	Retries    int           // attempts after the first; default 4, negative for none
	Backoff    time.Duration // delay before the first retry, doubled each time; default 1s
	MaxBackoff time.Duration // cap of the delay; default 30s

	// Mirrors rewrites URLs: a URL starting with an origin key (at a path
	// boundary) is fetched from the value instead. The lock keeps the origin URL.
	Mirrors map[string]string

	Progress         io.Writer     // where progress goes; nil for none
	ProgressInterval time.Duration // between plain progress lines; default 2s
	PlainProgress    bool          // plain lines even on a terminal

	// Client is the HTTP client; nil means one that honours HTTP(S)_PROXY and
	// NO_PROXY (http.ProxyFromEnvironment).
	Client    *http.Client
	UserAgent string

	bars bool // tests: draw mpb bars even when Progress is not a terminal
}

func (o Options) withDefaults() Options {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Retries == 0 {
		o.Retries = 4
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 2 * time.Second
	}
	if o.Client == nil {
		o.Client = defaultClient()
	}
	if o.UserAgent == "" {
		o.UserAgent = "bainode-fetch"
	}
	return o
}

func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone() // keeps ProxyFromEnvironment and dial timeouts
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}

// Result tells what a Download did.
type Result struct {
	Artifacts  []Artifact // in input order, with Size and SHA256 filled in
	Downloaded int64      // bytes received from the network
	Fetched    int        // artifacts downloaded in this run
	Cached     int        // artifacts already in the cache
}

// ChecksumError is a download whose bytes are not the pinned ones.
type ChecksumError struct {
	Artifact, URL    string
	Expected, Actual string
	resumed          bool // the bad file had been resumed from an earlier partial
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 mismatch: expected %s, got %s (from %s)", e.Artifact, e.Expected, e.Actual, e.URL)
}

// Download makes every artifact present and verified in the cache. Pinned
// artifacts already in the cache cost no network and no hashing; the rest are
// downloaded in parallel, resumed if a partial file is there, retried with
// exponential backoff, and checked against their sha256. A file that fails
// its checksum never stays in the cache. Errors name the artifact; the
// Result lists all artifacts, those that failed as they were given.
func Download(ctx context.Context, c *Cache, arts []Artifact, o Options) (*Result, error) {
	o = o.withDefaults()
	arts = append([]Artifact(nil), arts...) // names get filled in; keep the caller's slice
	seen := map[string]string{}
	for i := range arts {
		if arts[i].Name == "" {
			arts[i].Name = NameFromURL(arts[i].URL)
		}
		a := arts[i]
		if err := a.validate(); err != nil {
			return nil, err
		}
		if u, dup := seen[a.Name]; dup && u != a.URL {
			return nil, fmt.Errorf("two artifacts named %s (%s and %s)", a.Name, u, a.URL)
		}
		seen[a.Name] = a.URL
	}
	d := &downloader{
		cache: c,
		o:     o,
		grab:  &grab.Client{HTTPClient: o.Client, UserAgent: o.UserAgent, BufferSize: 256 << 10},
		rep:   newReporter(o, arts),
	}
	unlock, err := c.lock(d.rep)
	if err != nil {
		d.rep.close()
		return nil, err
	}
	defer unlock()

	// Artifacts with the same bytes (same sum, or same URL when unpinned)
	// share a partial file: fetch one first, the others after it, when they
	// are cache hits.
	var now, later []int
	seenKey := map[string]bool{}
	for i, a := range arts {
		key := a.SHA256
		if key == "" {
			key = a.URL
		}
		if seenKey[key] {
			later = append(later, i)
		} else {
			seenKey[key] = true
			now = append(now, i)
		}
	}
	res := &Result{Artifacts: make([]Artifact, len(arts))}
	errs := make([]error, len(arts))
	var fetched, cached atomic.Int64
	run := func(idx []int, jobs int) {
		work := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < jobs && w < len(idx); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					a, hit, err := d.fetchOne(ctx, arts[i])
					res.Artifacts[i] = a
					if err != nil {
						errs[i] = &ArtifactError{Index: i, Name: arts[i].Name, Err: err}
					}
					switch {
					case err != nil:
						d.rep.end(a, "failed", err)
					case hit:
						cached.Add(1)
						d.rep.end(a, "cached", nil)
					default:
						fetched.Add(1)
						d.rep.end(a, "downloaded", nil)
					}
				}
			}()
		}
		for _, i := range idx {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	run(now, o.Jobs)
	run(later, 1)
	d.rep.close()
	res.Downloaded = d.downloaded.Load()
	res.Fetched, res.Cached = int(fetched.Load()), int(cached.Load())
	return res, errors.Join(errs...)
}

// ArtifactError is Download's error for one artifact: Index is its place
// in the slice given to Download. The message is Err's, which names it.
type ArtifactError struct {
	Index int
	Name  string
	Err   error
}

func (e *ArtifactError) Error() string { return e.Err.Error() }
func (e *ArtifactError) Unwrap() error { return e.Err }

type downloader struct {
	cache      *Cache
	o          Options
	grab       *grab.Client
	rep        reporter
	downloaded atomic.Int64
}

// fetchOne returns the pinned artifact and whether it was a cache hit.
func (d *downloader) fetchOne(ctx context.Context, a Artifact) (Artifact, bool, error) {
	if a.SHA256 != "" {
		_, err := d.cache.verifyBlob(a.SHA256, a.Size, true)
		switch {
		case err == nil:
			if fi, err := os.Stat(d.cache.BlobPath(a.SHA256)); err == nil {
				a.Size = fi.Size()
			}
			return a, true, d.cache.index(a)
		case errors.Is(err, errCorrupt):
			d.rep.note(fmt.Sprintf("%s: cached copy is corrupt (%v); downloading again", a.label(), err))
			if err := d.cache.remove(a.SHA256); err != nil {
				return a, false, fmt.Errorf("%s: %w", a.label(), err)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return a, false, fmt.Errorf("%s: %w", a.label(), err)
		}
	}
	src := RewriteURL(a.URL, d.o.Mirrors)
	part := d.cache.partialPath(a)
	var err error
	for attempt := 0; ; attempt++ {
		var sum string
		if sum, err = d.attempt(ctx, a, src, part); err == nil {
			fi, serr := os.Stat(part)
			if serr != nil {
				return a, false, fmt.Errorf("%s: %w", a.label(), serr)
			}
			a.SHA256, a.Size = sum, fi.Size()
			if err := d.cache.put(part, a); err != nil {
				return a, false, fmt.Errorf("%s: store: %w", a.label(), err)
			}
			return a, false, nil
		}
		if attempt >= d.o.Retries || !retryable(ctx, err) {
			break
		}
		wait := d.o.Backoff << attempt
		if wait > d.o.MaxBackoff || wait <= 0 {
			wait = d.o.MaxBackoff
		}
		d.rep.note(fmt.Sprintf("%s: attempt %d failed (%v); retrying in %s", a.label(), attempt+1, err, wait))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return a, false, fmt.Errorf("%s: %w", a.label(), ctx.Err())
		}
	}
	var ce *ChecksumError
	if errors.As(err, &ce) {
		os.Remove(part) // grab deletes it too; make sure nothing of it survives
		return a, false, err
	}
	return a, false, fmt.Errorf("%s: %w", a.label(), err)
}

// attempt runs one grab transfer into part and returns the file's sha256.
func (d *downloader) attempt(ctx context.Context, a Artifact, src, part string) (string, error) {
	req, err := grab.NewRequest(part, src)
	if err != nil {
		return "", fmt.Errorf("bad url %s: %w", src, err)
	}
	req = req.WithContext(ctx)
	req.Size = a.Size
	req.Label = a.label()
	req.IgnoreRemoteTime = true // the cache owns mtimes (they key the state record)
	h := sha256.New()
	if a.SHA256 != "" {
		want, _ := hex.DecodeString(a.SHA256)
		// deleteOnError: grab otherwise keeps (and later accepts) a bad file.
		req.SetChecksum(h, want, true)
	}
	var pre int64
	if fi, err := os.Stat(part); err == nil {
		pre = fi.Size()
	}
	resp := d.grab.Do(req)
	d.rep.begin(a, resp, pre)
	err = resp.Err()
	n := resp.BytesComplete()
	if resp.DidResume {
		n -= pre
	}
	if n > 0 {
		d.downloaded.Add(n)
	}
	d.rep.finish(a, n)
	switch {
	case errors.Is(err, grab.ErrBadChecksum):
		os.Remove(part)
		return "", &ChecksumError{Artifact: a.label(), URL: src, Expected: a.SHA256,
			Actual: hex.EncodeToString(h.Sum(nil)), resumed: resp.DidResume}
	case errors.Is(err, grab.ErrBadLength):
		os.Remove(part) // a partial longer than the file, or a server that changed its mind
		return "", fmt.Errorf("%s: size differs from %d bytes", src, a.Size)
	case err != nil:
		return "", fmt.Errorf("%s: %w", src, err)
	}
	if a.SHA256 != "" {
		return a.SHA256, nil
	}
	return fileSHA256(part)
}

// retryable tells transient failures from final ones.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ce *ChecksumError
	if errors.As(err, &ce) {
		return ce.resumed // a stale partial: the fresh download may well be right
	}
	var sc grab.StatusCodeError
	if errors.As(err, &sc) {
		return sc == http.StatusRequestTimeout || sc == http.StatusTooManyRequests || sc >= 500
	}
	return true // network errors, cut transfers, bad lengths
}

// RewriteURL applies the mirror with the longest origin that prefixes u at a
// path boundary: "https://a.example" matches "https://a.example/x" but not
// "https://a.example.org/x".
func RewriteURL(u string, mirrors map[string]string) string {
	best := ""
	for origin := range mirrors {
		o := strings.TrimSuffix(origin, "/")
		if o != "" && (u == o || strings.HasPrefix(u, o+"/")) && len(o) > len(strings.TrimSuffix(best, "/")) {
			best = origin
		}
	}
	if best == "" {
		return u
	}
	return strings.TrimSuffix(mirrors[best], "/") + u[len(strings.TrimSuffix(best, "/")):]
}

// ParseMirror parses a "ORIGIN=URL" command-line mirror.
func ParseMirror(s string) (origin, replacement string, err error) {
	origin, replacement, ok := strings.Cut(s, "=")
	if !ok || origin == "" || replacement == "" {
		return "", "", fmt.Errorf("mirror %q: want ORIGIN=URL", s)
	}
	for _, u := range []string{origin, replacement} {
		if !strings.Contains(u, "://") {
			return "", "", fmt.Errorf("mirror %q: %q is not a URL", s, u)
		}
	}
	return origin, replacement, nil
}
