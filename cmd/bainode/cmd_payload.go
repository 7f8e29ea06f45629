package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/builder/spec"
)

func init() {
	register(&cli.Command{
		Name:  "payload",
		Usage: "write the disk image an air-gapped node installs its packages, Python and images from",
		Description: `payload writes FILE: a raw disk holding one ext4 file system labelled
BAIPAYLOAD, made fresh, with

  apt/           a flat apt repository of the .debs (Packages, Release)
  python/        the node's python-build-standalone tarball
  images/        docker-load tarballs of images.pull
  manifest.json  the size and sha256 of every file

Nodes with "artifacts: payload" in the site file find it by label, mount it
read-only, check every file against manifest.json, and install from it
alone: apt uses only the payload's repository, Python is unpacked from it,
images are loaded with docker load. Nothing is downloaded.

What goes in: the .debs that the lock pins (from the cache that bainode fetch
filled) and every .deb in --debs DIR; the node's Python tarball from the
cache (by its asset name); for each image in images.pull, a docker save
tarball from --images DIR carrying that tag, or the cache's
image_<ref with / and : as _>.tar. A missing artifact is an error that
names it. With several nodes selected, one payload carries them all.

Attach the file to the node as a second disk (raw; read-only is enough).

Examples:
  bainode payload --config site.yaml --node bai-a01 --debs ./debs -o payload.img
  bainode payload --example vm-test --debs ./debs --images ./images -o payload.img`,
		Flags: siteFlags(nodeFlag,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the payload disk image to `FILE` (required)"},
			cacheFlag,
			&cli.StringFlag{Name: "lock", Value: fetch.LockFileName, Usage: "lock `FILE` whose .debs are carried (ignored when it does not exist)"},
			&cli.StringSliceFlag{Name: "debs", Usage: "carry every .deb in `DIR` (repeatable)"},
			&cli.StringSliceFlag{Name: "images", Usage: "docker save tarballs in `DIR` (repeatable)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines"},
		),
		Action: runPayload,
	})
}

func runPayload(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("payload takes no arguments, got %q", c.Args().Slice())
	}
	out := c.String("output")
	if out == "" {
		return usagef("payload needs -o FILE: where to write the disk image")
	}
	_, nodes, err := prepare(c)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n.Artifacts != spec.ArtifactsPayload {
			warnf("%s has artifacts: %s; its seed will not use the payload (set artifacts: payload)", n.Hostname, n.Artifacts)
		}
	}
	cache, err := fetch.OpenCache(c.String("cache"))
	if err != nil {
		return err
	}
	lock, err := readLockIfAny(c.String("lock"))
	if err != nil {
		return err
	}
	for _, flag := range []string{"debs", "images"} {
		for _, d := range c.StringSlice(flag) {
			if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
				return usagef("--%s %s: not a directory", flag, d)
			}
		}
	}
	items, err := payload.ForNodes(nodes, payload.Sources{
		Cache: cache, Lock: lock, DebDirs: c.StringSlice("debs"), ImageDirs: c.StringSlice("images"),
	})
	if err != nil {
		return err
	}
	o := payload.Options{Progress: c.App.ErrWriter}
	if c.Bool("quiet") {
		o.Progress = nil
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := payload.Build(ctx, out, cache, items, o); err != nil {
		return err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s: %d files for %d node(s), %s\n", out, len(items), len(nodes), mib(fi.Size()))
	return nil
}
