package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/builder/vm"
)

func init() {
	formats := make([]string, len(bake.Formats))
	for i, f := range bake.Formats {
		formats[i] = string(f)
	}
	register(&cli.Command{
		Name:  "bake",
		Usage: "bake a golden disk image for a role (or a node): boot the base once, provision, seal",
		Description: `Boots the base (raw or qcow2; it is never written) once under QEMU with a bake seed
holding the image part of the site's plan: the user and groups, limits and
sysctl files, Docker, the Python and its venvs, the images, and the
provisioning and verifier scripts. Nothing node-specific goes in: no
hostname, network, hosts block or /vfroot (a node's own seed adds those).

After cloud-init has finished, a seal unit cleans cloud-init's state, logs
and seed, resets the machine-id (empty before systemd 247, "uninitialized"
from 247 on), removes SSH host keys, random-seed, DHCP leases, apt lists,
histories and /tmp, trims free space, prints a seal report on the console
and powers off. The disk is then converted to OUT, written atomically,
with OUT.json beside it: the inputs' sha256, the guest's packages and
kernels, the seal report, OUT's sha256 and size and the time of each step.

A second bake with the same inputs (base, the role's plan, payload, format,
bainode version) reuses OUT and says so; another node of the same role
shares the image. The guest's network is QEMU user networking with
restrict=on, and its NIC is dumped: a bake whose guest tries to reach the
network (a DNS query, a TCP connection) fails and names what it tried.
apt-daily, apt-daily-upgrade and unattended-upgrades are held during the
bake and restored by the seal.
Carry what it installs on a payload disk (bainode payload), or give
--online to let the guest reach the network through NAT.

The base: --base IMAGE, any bootable disk. Without --base, an Ubuntu
target's vendor cloud image is taken from the fetch cache (--cache), where
'bainode fetch --node N --cloud-image' put it after checking it against
Ubuntu's signed SHA256SUMS; the bake checks the image still hashes to what
fetch recorded. When it is missing, bake says what to run.

Formats: qcow2 (compressed with zstd on all cores; --compat: zlib, for QEMU
older than 5.1 as on Ubuntu 20.04 hosts), raw (sparse, for cloud imports),
raw.zst (zstd stream of the raw disk, for bare metal). The manifest says
which compression it used.

Examples:
  bainode bake --example vm-test --role all-in-one --base debian-12.qcow2 -o aio.qcow2 --payload payload.img
  bainode fetch -c site.yaml --node bai-a01 --cloud-image && bainode bake -c site.yaml --role agent -o agent.qcow2 --online
  bainode bake -c site.yaml --role agent --base jammy.img -o agent.raw.zst --format raw.zst --online
  bainode bake -c site.yaml --node bai-a01 --base jammy.img --disk-size 20G -o a01.qcow2 --keep`,
		Flags: siteFlags(
			&cli.StringFlag{Name: "role", Usage: "bake for this `ROLE` (the plan of its first node)"},
			&cli.StringFlag{Name: "node", Aliases: []string{"n"}, Usage: "bake for this node `HOSTNAME`"},
			&cli.StringFlag{Name: "base", Usage: "base disk `IMAGE` (raw or qcow2); default: the target's Ubuntu cloud image from the fetch cache"},
			cacheFlag,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FILE`", Required: true},
			&cli.StringFlag{Name: "format", Value: "qcow2", Usage: "output format: " + strings.Join(formats, ", ")},
			&cli.BoolFlag{Name: "compat", Usage: "qcow2 with zlib instead of zstd, for QEMU older than 5.1 (Ubuntu 20.04 hosts)"},
			&cli.StringFlag{Name: "disk-size", Usage: "grow the disk to `SIZE` (e.g. 20G) before the boot"},
			&cli.StringFlag{Name: "payload", Usage: "payload disk `FILE` (bainode payload) for an offline bake"},
			&cli.BoolFlag{Name: "online", Usage: "give the guest NAT to the network (no payload then)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the work directory of a failed bake"},
			&cli.DurationFlag{Name: "timeout", Value: 45 * time.Minute, Usage: "until the guest is sealed and off"},
			&cli.StringFlag{Name: "accel", Value: "tcg", Usage: "tcg or kvm"},
			&cli.IntFlag{Name: "memory", Value: 2048, Usage: "guest memory in `MiB`"},
			&cli.StringFlag{Name: "kernel", Usage: "boot this kernel directly (with --initrd and --append)"},
			&cli.StringFlag{Name: "initrd", Usage: "initrd for --kernel"},
			&cli.StringFlag{Name: "append", Usage: "kernel command line for --kernel"},
			&cli.BoolFlag{Name: "console", Usage: "copy the whole serial console to stderr"},
		),
		Action: runBake,
	})
}

func runBake(c *cli.Context) error {
	if (c.String("role") == "") == (c.String("node") == "") {
		return usagef("give one of --role and --node")
	}
	site, err := loadSite(c)
	if err != nil {
		return err
	}
	n, err := bakeNode(site, c.String("role"), c.String("node"))
	if err != nil {
		return err
	}
	r, err := render.New(render.Options{Version: version})
	if err != nil {
		return err
	}
	files, err := r.Node(site, n)
	if err != nil {
		return err
	}
	size, err := parseSize(c.String("disk-size"))
	if err != nil {
		return usagef("--disk-size: %v", err)
	}
	if f := bake.Format(c.String("format")); !slices.Contains(bake.Formats, f) {
		return usagef("--format %q: want one of %v", f, bake.Formats)
	}
	accel := vm.Accel(c.String("accel"))
	if accel != vm.TCG && accel != vm.KVM {
		return usagef("--accel %q: want tcg or kvm", accel)
	}
	base, baseSum, err := bakeBase(c, n)
	if err != nil {
		return err
	}
	cache, _ := os.UserCacheDir()
	o := bake.Options{
		Base: base, BaseSHA256: baseSum, Kernel: c.String("kernel"), Initrd: c.String("initrd"), Append: c.String("append"),
		Seed: files, Payload: c.String("payload"), Online: c.Bool("online"),
		Output: c.String("output"), Format: bake.Format(c.String("format")), Compat: c.Bool("compat"), DiskSize: size,
		Accel: accel, MemoryMiB: c.Int("memory"), Timeout: c.Duration("timeout"), Keep: c.Bool("keep"),
		Version: version, HashCache: filepath.Join(cache, "bainode", "bake-hashes"),
		Progress: os.Stderr,
	}
	if c.Bool("console") {
		o.Console = os.Stderr
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bake.Bake(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("%s\t%s\t%d bytes\tsha256 %s\tmanifest %s\n", o.Output, map[bool]string{true: "cached", false: "baked"}[res.CacheHit],
		res.Manifest.Output.Size, res.Manifest.Output.SHA256, bake.ManifestPath(o.Output))
	return nil
}

// bakeBase is --base, or the node's Ubuntu cloud image from the fetch
// cache with the sha256 fetch recorded.
func bakeBase(c *cli.Context, n *spec.Node) (string, string, error) {
	if b := c.String("base"); b != "" {
		return b, "", nil
	}
	cache, err := fetch.OpenCache(c.String("cache"))
	if err != nil {
		return "", "", err
	}
	cmd := "bainode fetch"
	switch {
	case c.String("config") != "":
		cmd += " -c " + c.String("config")
	case c.String("example") != "":
		cmd += " --example " + c.String("example")
	}
	if c.String("target") != "" {
		cmd += " --target " + c.String("target")
	}
	if c.String("cache") != "" {
		cmd += " --cache " + c.String("cache")
	}
	cmd += " --node " + n.Hostname + " --cloud-image"
	b, err := bake.CloudImage(cache, n, "amd64", cmd)
	if err != nil {
		return "", "", err
	}
	fmt.Fprintf(os.Stderr, "base: %s from the fetch cache (%s, sha256 %s)\n", b.Name, b.URL, b.SHA256)
	return b.Path, b.SHA256, nil
}

// bakeNode picks the node whose plan the image carries.
func bakeNode(site *spec.Site, role, host string) (*spec.Node, error) {
	var roles []string
	for i := range site.Nodes {
		n := &site.Nodes[i]
		if (host != "" && n.Hostname == host) || (role != "" && string(n.Role) == role) {
			return n, nil
		}
		roles = append(roles, string(n.Role))
	}
	if host != "" {
		return nil, usagef("--node %q: the site has no such node", host)
	}
	return nil, usagef("--role %q: no node of the site has it (roles: %s)", role, strings.Join(roles, ", "))
}

// parseSize reads 20G, 512M, or bytes.
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	}
	num := s
	if mult > 1 {
		num = s[:len(s)-1]
	}
	var v int64
	if _, err := fmt.Sscan(num, &v); err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size like 20G", s)
	}
	return v * mult, nil
}
