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

	"github.com/lablup/bainode/builder/artifacts"
	"github.com/lablup/bainode/builder/fetch"
)

func init() {
	register(&cli.Command{
		Name:      "fetch",
		Usage:     "download the site's artifacts into a verified cache for air-gapped installs",
		ArgsUsage: " ",
		Description: `fetch fills a content-addressed cache (default: ~/.cache/bainode/cache) with
the files a site installs offline (.debs, static Python builds, container
images, cloud images) and pins them in a lock file, so that a second fetch,
or one on another machine, gets exactly the same bytes. 'bainode payload'
then takes them from the cache.

The artifacts come from one of:
  --config FILE | --example NAME   the site: every artifact its nodes (--node)
        need for their target: the python-build-standalone tarball (checked
        against python.sha256 or the release's SHA256SUMS), Docker's .debs
        (docker.version pins) and, with gpu.toolkit, NVIDIA's container
        toolkit .debs, resolved with their dependencies from the signed
        repositories, and the images.pull images (docker-load tarballs,
        credentials from images.registries or your docker login). With
        --cloud-image also the Ubuntu cloud image (SHA256SUMS signed by
        Ubuntu). --manifest FILE (an Ubuntu image's .manifest) leaves out
        packages the image already has. The lock is rewritten to exactly these.
  --list FILE   one artifact a line, "URL [sha256]"; blank lines and # comments
        are ignored. A URL without a sum is pinned by the first fetch and from
        then on by the lock.
  neither       what the lock pins (images by their locked digest).

Every download is checked against its sha256 and only then moved into the
cache; a file that fails is deleted and named in the error with the expected
and actual sums. Interrupted downloads resume (HTTP Range) on the next run.
A warm cache downloads nothing and re-hashes nothing. Proxies come from
HTTPS_PROXY, HTTP_PROXY and NO_PROXY.

Examples:
  bainode fetch --config site.yaml              # the site's artifacts; write bainode.lock
  bainode fetch --example cluster --node bai-a01 --cloud-image
  bainode fetch --list artifacts.txt            # fetch and write bainode.lock
  bainode fetch                                 # fetch what bainode.lock pins
  bainode fetch --mirror https://download.docker.com=http://mirror.lan/docker
  bainode fetch --check                         # offline: what is missing or corrupt?
  bainode fetch --cache /media/usb/bainode      # fill a cache to carry in

Exit status: 0 all present and verified, 1 something failed or --check found
problems, 2 bad usage.`,
		Flags: siteFlags(
			nodeFlag,
			&cli.BoolFlag{Name: "cloud-image", Usage: "with a site, also fetch the Ubuntu cloud image of each node's target"},
			&cli.StringFlag{Name: "manifest", Usage: "with a site, leave out the packages an Ubuntu image's .manifest `FILE` lists"},
			cacheFlag,
			&cli.StringFlag{Name: "lock", Value: fetch.LockFileName, Usage: "lock `FILE` to read and (re)write"},
			&cli.StringFlag{Name: "list", Usage: "fetch the URLs in `FILE` (\"URL [sha256]\" per line) and write the lock for them"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "parallel downloads `N`"},
			&cli.IntFlag{Name: "retries", Value: 4, Usage: "retries `N` per artifact after transient failures (exponential backoff)"},
			&cli.StringSliceFlag{Name: "mirror", Usage: "fetch URLs under `ORIGIN=URL`'s origin from URL instead (repeatable); the lock keeps origin URLs"},
			&cli.BoolFlag{Name: "check", Usage: "only check, offline, that the cache holds every locked artifact intact"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
		),
		Action: runFetch,
	})
}

// cacheFlag is the artifact cache that fetch fills and payload reads.
var cacheFlag = &cli.StringFlag{Name: "cache", Usage: "artifact cache `DIR` (default: the user cache dir + /bainode/cache)", EnvVars: []string{"BAINODE_CACHE"}}

// readLockIfAny reads the lock at path; no path or no file is no lock.
func readLockIfAny(path string) (*fetch.Lock, error) {
	if path == "" {
		return nil, nil
	}
	lock, err := fetch.ReadLock(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return lock, err
}

func runFetch(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("fetch takes no arguments, got %q", c.Args().Slice())
	}
	if c.Int("jobs") < 1 {
		return usagef("--jobs must be at least 1")
	}
	siteMode := c.IsSet("config") || c.IsSet("example")
	if !siteMode {
		for _, f := range []string{"target", "node", "cloud-image", "manifest"} {
			if c.IsSet(f) {
				return usagef("--%s needs a site: give --config FILE or --example NAME", f)
			}
		}
	}
	if siteMode && c.IsSet("list") {
		return usagef("--list and a site (--config, --example) are exclusive")
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
	lock, err := readLockIfAny(lockPath)
	if err != nil {
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

	var arts []fetch.Artifact
	switch {
	case siteMode:
	case c.String("list") != "":
		if arts, err = readList(c.String("list")); err != nil {
			return usageError{err}
		}
		if lock != nil {
			arts = lock.Pin(arts)
		}
	case lock != nil:
	default:
		return usagef("nothing to fetch: give --config FILE or --example NAME, --list FILE, or run where %s exists (--lock)", lockPath)
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
	switch {
	case siteMode:
		return fetchSite(ctx, c, cache, lockPath, o)
	case c.String("list") == "":
		return fetchLock(ctx, c, cache, lock, lockPath, o)
	}
	res, err := fetch.Download(ctx, cache, arts, o)
	if res == nil {
		return err
	}
	// Pin what did download even if something else failed: the next run
	// then only has the failures left.
	if werr := writeLockIfChanged(lockPath, fetch.NewLock(pinnedOnly(res.Artifacts))); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d artifacts in %s: %d downloaded (%s), %d already cached; lock %s\n",
		len(res.Artifacts), cache.Root(), res.Fetched, mib(res.Downloaded), res.Cached, lockPath)
	return nil
}

// fetchSite resolves what the selected nodes need and fetches it; the lock
// is rewritten to exactly that (bainode payload carries every locked .deb).
func fetchSite(ctx context.Context, c *cli.Context, cache *fetch.Cache, lockPath string, o fetch.Options) error {
	site, nodes, err := prepare(c)
	if err != nil {
		return err
	}
	ao := artifacts.Options{Fetch: o, CloudImage: c.Bool("cloud-image"),
		Warn: func(m string) { warnf("%s", m) }}
	if m := c.String("manifest"); m != "" {
		b, err := os.ReadFile(m)
		if err != nil {
			return usagef("--manifest: %v", err)
		}
		if ao.Installed, err = fetch.ParseManifest(b); err != nil {
			return usagef("--manifest %s: %v", m, err)
		}
	}
	reqs, err := artifacts.ForSite(ctx, site, nodes, ao)
	if err != nil {
		return err
	}
	arts, err := artifacts.Fetch(ctx, cache, reqs, o)
	// Pin what is known even if something failed: --check then names what
	// is missing, and the next run only has the failures left.
	if werr := writeLockIfChanged(lockPath, fetch.NewLock(pinnedOnly(arts))); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%d artifacts for %d nodes present and verified in %s; lock %s\n",
		len(arts), len(nodes), cache.Root(), lockPath)
	return nil
}

// fetchLock fetches what the lock pins: files by sha256, images by digest.
func fetchLock(ctx context.Context, c *cli.Context, cache *fetch.Cache, lock *fetch.Lock, lockPath string, o fetch.Options) error {
	arts, err := artifacts.Fetch(ctx, cache, artifacts.FromLock(lock), o)
	if werr := writeLockIfChanged(lockPath, fetch.NewLock(mergePins(lock.Artifacts, arts))); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%d locked artifacts present and verified in %s; lock %s\n",
		len(arts), cache.Root(), lockPath)
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
