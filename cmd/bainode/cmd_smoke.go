package main

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/smoke"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
)

func init() {
	register(&cli.Command{
		Name:  "smoke",
		Usage: "boot a disk image with a seed under QEMU and check the node against the guide",
		Description: `Boots DISK (raw or qcow2; it is never written) with a NoCloud seed, waits for
the verifier that the seed installs to print its report on the serial
console, and prints one PASS/FAIL/SKIP line per check, then
"N passed, M failed, K skipped". Exit status 1 on any FAIL.

The seed is --seed FILE, or rendered from the site (--config/--example) for
--node. With --boots 2 the guest is restarted on the same disk and checked
again: a setting only the first boot applied fails there.

QEMU uses user-mode networking with restrict=on: the guest reaches nothing
beyond this machine. TCG is the default accelerator; --accel kvm uses KVM.

Examples:
  bainode smoke --image debian-12.qcow2 --example vm-test --boots 2 --junit smoke.xml
  bainode smoke --image focal-server-cloudimg-amd64.img --seed out/bai-m1/seed.iso --timeout 30m`,
		Flags: siteFlags(nodeFlag,
			&cli.StringFlag{Name: "image", Usage: "boot disk `DISK` (raw or qcow2)", Required: true},
			&cli.StringFlag{Name: "seed", Usage: "NoCloud seed `FILE` (.iso or .img); default: render the site's node"},
			&cli.StringFlag{Name: "junit", Usage: "also write JUnit XML to `FILE`"},
			&cli.DurationFlag{Name: "timeout", Value: 20 * time.Minute, Usage: "per boot, until the report"},
			&cli.IntFlag{Name: "boots", Value: 1, Usage: "boot `N` times, checking after each"},
			&cli.StringFlag{Name: "accel", Value: "tcg", Usage: "tcg or kvm"},
			&cli.IntFlag{Name: "memory", Value: 2048, Usage: "guest memory in `MiB`"},
			&cli.StringFlag{Name: "firmware", Value: "bios", Usage: "bios or uefi"},
			&cli.StringFlag{Name: "kernel", Usage: "boot this kernel directly (with --initrd and --append)"},
			&cli.StringFlag{Name: "initrd", Usage: "initrd for --kernel"},
			&cli.StringFlag{Name: "append", Usage: "kernel command line for --kernel"},
			&cli.StringFlag{Name: "logs", Usage: "keep serial logs in `DIR`"},
			&cli.BoolFlag{Name: "no-network", Usage: "no network device at all"},
		),
		Action: runSmoke,
	})
}

func runSmoke(c *cli.Context) error {
	o := smoke.Options{
		Image: c.String("image"), Boots: c.Int("boots"), Timeout: c.Duration("timeout"),
		MemoryMiB: c.Int("memory"), Accel: vm.Accel(c.String("accel")), Firmware: vm.Firmware(c.String("firmware")),
		Kernel: c.String("kernel"), Initrd: c.String("initrd"), Append: c.String("append"),
		LogDir: c.String("logs"), NoNetwork: c.Bool("no-network"),
	}
	if o.Accel != vm.TCG && o.Accel != vm.KVM {
		return usagef("--accel %q: want tcg or kvm", o.Accel)
	}
	if _, err := os.Stat(o.Image); err != nil {
		return usagef("--image: %v", err)
	}
	name := filepath.Base(o.Image)
	if s := c.String("seed"); s != "" {
		o.Seed, o.SeedFormat = s, "iso"
		if filepath.Ext(s) == ".img" {
			o.SeedFormat = "vfat"
		}
	} else {
		p, host, err := seedFor(c)
		if err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(p))
		o.Seed, o.SeedFormat, name = p, "iso", host
	}
	o.Progress = progressWriter(c)

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := smoke.Run(ctx, o)
	var (
		fails int
		runs  []verify.Run
	)
	for i, r := range res.Reports {
		suite := fmt.Sprintf("%s.boot%d", name, i+1)
		if len(res.Reports) == 1 {
			suite = name
		}
		runs = append(runs, verify.Run{Name: suite, Report: r})
		fails += r.Count().Fail
	}
	if len(runs) > 0 {
		lines, _ := verify.FormatNamed("lines")
		if err := lines.Write(c.App.Writer, runs); err != nil {
			return err
		}
	}
	if p := c.String("junit"); p != "" && len(runs) > 0 {
		var b bytes.Buffer
		if err := verify.WriteJUnitRuns(&b, runs); err != nil {
			return err
		}
		if err := writeFile(p, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if fails > 0 {
		return cli.Exit("", exitFailure)
	}
	return nil
}

// seedFor renders the selected node and writes its seed to a temp dir.
func seedFor(c *cli.Context) (string, string, error) {
	site, nodes, err := prepare(c)
	if err != nil {
		return "", "", err
	}
	if len(nodes) != 1 {
		return "", "", usagef("the site has %d nodes; pick one with --node", len(nodes))
	}
	r, err := render.New(render.Options{Version: version})
	if err != nil {
		return "", "", err
	}
	f, err := r.Node(site, nodes[0])
	if err != nil {
		return "", "", err
	}
	dir, err := os.MkdirTemp("", "bainode-seed-")
	if err != nil {
		return "", "", err
	}
	p := filepath.Join(dir, "seed.iso")
	if err := seed.WriteISO(p, f.FS()); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return p, nodes[0].Hostname, nil
}

// progressWriter is where boot stages go: one short line per stage with the
// elapsed time, which reads well on a terminal and in CI logs alike.
func progressWriter(c *cli.Context) *os.File { return os.Stderr }
