package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fetch"
)

func init() {
	register(&cli.Command{
		Name:      "fetch",
		Usage:     "download the site's artifacts into a verified cache for air-gapped installs",
		ArgsUsage: " ",
		Description: `fetch fills a content-addressed cache (default: ~/.cache/bainode/cache) with
the files a site installs offline (cloud images, .debs, static Python builds)
and pins them in a lock file, so that a second fetch, or one on another
machine, gets exactly the same bytes.

The artifacts come from the lock file, or from --list FILE: one artifact a
line, "URL [sha256]"; blank lines and # comments are ignored. A URL without a
sum is pinned by the first fetch and from then on by the lock.

Every download is checked against its sha256 and only then moved into the
cache; a file that fails is deleted and named in the error with the expected
and actual sums. Interrupted downloads resume (HTTP Range) on the next run.
A warm cache downloads nothing and re-hashes nothing. Proxies come from
HTTPS_PROXY, HTTP_PROXY and NO_PROXY.

Examples:
  bainode fetch --list artifacts.txt            # fetch and write bainode.lock
  bainode fetch                                 # fetch what bainode.lock pins
  bainode fetch --mirror https://download.docker.com=http://mirror.lan/docker
  bainode fetch --check                         # offline: what is missing or corrupt?
  bainode fetch --cache /media/usb/bainode      # fill a cache to carry in

Exit status: 0 all present and verified, 1 something failed or --check found
problems, 2 bad usage.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cache", Usage: "cache `DIR` (default: the user cache dir + /bainode/cache)", EnvVars: []string{"BAINODE_CACHE"}},
			&cli.StringFlag{Name: "lock", Value: fetch.LockFileName, Usage: "lock `FILE` to read and (re)write"},
			&cli.StringFlag{Name: "list", Usage: "fetch the URLs in `FILE` (\"URL [sha256]\" per line) and write the lock for them"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "parallel downloads `N`"},
			&cli.IntFlag{Name: "retries", Value: 4, Usage: "retries `N` per artifact after transient failures (exponential backoff)"},
			&cli.StringSliceFlag{Name: "mirror", Usage: "fetch URLs under `ORIGIN=URL`'s origin from URL instead (repeatable); the lock keeps origin URLs"},
			&cli.BoolFlag{Name: "check", Usage: "only check, offline, that the cache holds every locked artifact intact"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
		},
		Action: runFetch,
	})
}

func runFetch(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("fetch takes no arguments, got %q", c.Args().Slice())
	}
	if c.Int("jobs") < 1 {
		return usagef("--jobs must be at least 1")
	}
	mirrors := map[string]string{}
	for _, m := range c.StringSlice("mirror") {
		origin, repl, err := fetch.ParseMirror(m)
		if err != nil {
			return usagef("--mirror: %v", err)
		}
		mirrors[origin] = repl
	}
	cache, err := fetch.OpenCache(c.String("cache"))
	if err != nil {
		return err
	}
	lockPath := c.String("lock")
	lock, err := fetch.ReadLock(lockPath)
	if errors.Is(err, fs.ErrNotExist) {
		lock = nil
	} else if err != nil {
		return err
	}
	out := c.App.Writer

	if c.Bool("check") {
		if lock == nil {
			return usagef("--check needs a lock file; %s does not exist", lockPath)
		}
		probs := cache.Check(lock)
		for _, p := range probs {
			fmt.Fprintln(out, p)
		}
		if len(probs) > 0 {
			return fmt.Errorf("%d of %d locked artifacts are missing or corrupt in %s", len(probs), len(lock.Artifacts), cache.Root())
		}
		fmt.Fprintf(out, "all %d locked artifacts present and verified in %s\n", len(lock.Artifacts), cache.Root())
		return nil
	}

	// TODO(site spec): the site's artifacts (cloud image from its signed
	// SHA256SUMS, Docker and NVIDIA .debs resolved from their InRelease,
	// python-build-standalone) will come from builder/spec once it lists
	// them; until then they come from --list or the lock.
	var arts []fetch.Artifact
	switch {
	case c.String("list") != "":
		if arts, err = readList(c.String("list")); err != nil {
			return usageError{err}
		}
		if lock != nil {
			arts = lock.Pin(arts)
		}
	case lock != nil:
		arts = lock.Artifacts
	default:
		return usagef("nothing to fetch: give --list FILE, or run where %s exists (--lock)", lockPath)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop() // a cancelled download leaves its partial file to resume from
	o := fetch.Options{Jobs: c.Int("jobs"), Retries: c.Int("retries"), Mirrors: mirrors, Progress: c.App.ErrWriter}
	if c.Int("retries") == 0 {
		o.Retries = -1
	}
	if c.Bool("quiet") {
		o.Progress = nil
	}
	res, err := fetch.Download(ctx, cache, arts, o)
	if res == nil {
		return err
	}
	// Pin what did download even if something else failed: the next run
	// then only has the failures left.
	newLock := fetch.NewLock(pinnedOnly(res.Artifacts))
	if lock != nil && c.String("list") == "" {
		newLock = fetch.NewLock(mergePins(lock.Artifacts, res.Artifacts))
	}
	if werr := writeLockIfChanged(lockPath, newLock); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d artifacts in %s: %d downloaded (%s), %d already cached; lock %s\n",
		len(res.Artifacts), cache.Root(), res.Fetched, mib(res.Downloaded), res.Cached, lockPath)
	return nil
}

// readList parses "URL [sha256]" lines.
func readList(file string) ([]fetch.Artifact, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var arts []fetch.Artifact
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) > 2 || !strings.Contains(f[0], "://") {
			return nil, fmt.Errorf("%s:%d: want \"URL [sha256]\", got %q", file, n, line)
		}
		a := fetch.Artifact{URL: f[0], Name: fetch.NameFromURL(f[0])}
		if len(f) == 2 {
			a.SHA256 = strings.ToLower(strings.TrimPrefix(f[1], "sha256:"))
		}
		arts = append(arts, a)
	}
	if len(arts) == 0 {
		return nil, fmt.Errorf("%s: lists no artifact", file)
	}
	return arts, sc.Err()
}

func pinnedOnly(arts []fetch.Artifact) []fetch.Artifact {
	var out []fetch.Artifact
	for _, a := range arts {
		if a.Pinned() {
			out = append(out, a)
		}
	}
	return out
}

// mergePins keeps every locked artifact, updated with what the run pinned.
func mergePins(locked, got []fetch.Artifact) []fetch.Artifact {
	byURL := map[string]fetch.Artifact{}
	for _, a := range got {
		if a.Pinned() {
			byURL[a.URL] = a
		}
	}
	out := make([]fetch.Artifact, len(locked))
	for i, a := range locked {
		if g, ok := byURL[a.URL]; ok {
			a = g
		}
		out[i] = a
	}
	return out
}

// writeLockIfChanged leaves an identical lock untouched (and its mtime too).
func writeLockIfChanged(path string, l *fetch.Lock) error {
	want, err := l.Marshal()
	if err != nil {
		return err
	}
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return nil
	}
	return l.WriteFile(path)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
