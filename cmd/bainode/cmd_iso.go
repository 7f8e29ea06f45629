package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/autoinstall"
	"github.com/lablup/bainode/builder/iso"
	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
)

func init() {
	register(&cli.Command{
		Name:  "iso",
		Usage: "write a bootable installer ISO for machines without network boot",
		Description: `--mode image boots the deploy environment (bainode deploy-env -o DIR:
vmlinuz and initrd.img), which writes the node's role image to its disk
and reboots into it, as a network boot in image mode does.

With --image and --node the ISO is self-contained: it carries the role
image (raw.zst from bainode bake, checked against its manifest) and the
node's seed rendered from the site, and needs no network or bainoded. The
deploy environment reads the image off the medium, never picks the medium
itself as the target disk (a stick written with dd is a disk too), ejects
a CD when done and reboots. Booted again with the medium still in, it
finds the disk holds this deploy and leaves it alone (add bainode.reimage=1
to the kernel command line to write it again). The ISO is 0600: the seed
holds the node's secrets.

Otherwise the image and the node's seed come from bainoded (--server).
Without --node the ISO is generic: the agent fetches its node's config
from bainoded by MAC
("bainode.server=URL" on the kernel command line). With --node the ISO
carries that node's config as a second initrd, fetched from bainoded now:
it holds the node's reporting token, so the ISO is written mode 0600 from
its first byte; keep it as you keep the node's secrets. Boot loaders are
the distribution's (isolinux, syslinux-common, shim-signed,
grub-efi-amd64-signed) under --loaders; the signed shim and GRUB are put
on the ESP byte for byte, so Secure Boot works.

--mode autoinstall remasters Ubuntu's live-server ISO (20.04's isolinux
layout or 22.04/24.04's GRUB layout with an appended ESP, told apart by the
ISO's boot catalog and system area) into an unattended install: it adds a
NoCloud seed under /nocloud, puts "autoinstall ds=nocloud;s=/cdrom/nocloud/"
before "---" on every kernel line, and regenerates md5sum.txt. Boot images
and the ESP are copied byte for byte, so Secure Boot keeps working. With
--node the ISO carries that node's cloud-config (and is mode 0600). With
--server it is generic: an early command fetches each machine's
cloud-config from bainoded by MAC, then DMI serial. For an air-gapped node
(artifacts: payload), --payload puts the payload image on the ISO
(/bainode/payload.NNN, 2 GiB parts) and a late-command joins it into
/var/lib/bainode/payload.img on the installed system, which the node's
first boot loop-mounts when no disk is labelled BAIPAYLOAD.

Both modes write a hybrid ISO that boots from CD and, written with dd,
from USB, under BIOS and UEFI. No root, loop devices or mounts are needed.
The output is reproducible: timestamps are SOURCE_DATE_EPOCH if set, else
the source ISO's (autoinstall) or the deploy environment's kernel's (image).

Examples:
  bainode iso --mode image --deploy-env deploy-env/ --server http://10.0.0.2:8080 -o fleet.iso
  bainode iso --mode image --deploy-env deploy-env/ --image gpu.raw.zst \
    -c site.yaml --node bai-a01 -o bai-a01.iso
  bainode iso --mode image --deploy-env deploy-env/ --server http://10.0.0.2:8080 \
    -c site.yaml --node bai-a01 -o bai-a01.iso
  bainode iso --mode autoinstall --base ubuntu-22.04.4-live-server-amd64.iso \
    -c site.yaml --node bai-a01 -o bai-a01.iso
  bainode iso --mode autoinstall --base ubuntu-20.04.6-live-server-amd64.iso \
    --server http://10.0.0.2:8080 -o fleet.iso`,
		Flags: siteFlags(
			&cli.StringFlag{Name: "mode", Value: "autoinstall", Usage: "`MODE`: autoinstall or image"},
			&cli.StringFlag{Name: "base", Usage: "autoinstall: the vendor live-server ISO `FILE` to remaster"},
			&cli.StringFlag{Name: "deploy-env", Usage: "image: `DIR` holding vmlinuz and initrd.img (bainode deploy-env -o DIR)"},
			&cli.StringFlag{Name: "loaders", Value: "/", Usage: "image: root `DIR` the boot loader packages are installed or unpacked under"},
			&cli.StringFlag{Name: "kernel-args", Value: "console=tty0 console=ttyS0,115200n8", Usage: "image: more kernel `ARGS` for the deploy environment"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the ISO to `FILE`", Required: true},
			&cli.StringFlag{Name: "node", Aliases: []string{"n"}, Usage: "embed this node's (`HOSTNAME`) config (the ISO is then 0600)"},
			&cli.StringFlag{Name: "server", Usage: "bainoded's `URL`; autoinstall: makes a generic ISO; image: required without --image"},
			&cli.StringFlag{Name: "payload", Usage: "autoinstall: put this payload image `FILE` (bainode payload) on the ISO; the installer copies it to the node, whose first boot installs from it (air-gapped, with --node)"},
			&cli.StringFlag{Name: "image", Usage: "image: put this role image `FILE` (raw.zst from bainode bake) and --node's seed on the ISO: self-contained, no bainoded or network needed"},
		),
		Action: func(c *cli.Context) error {
			epoch, err := sourceDateEpoch()
			if err != nil {
				return usageError{err}
			}
			switch m := c.String("mode"); m {
			case "image":
				return isoImage(c, epoch)
			case "autoinstall":
			default:
				return usagef("--mode: %q is not supported (autoinstall, image)", m)
			}
			if c.String("base") == "" {
				return usagef("--mode autoinstall: --base FILE (the vendor live-server ISO) is required")
			}
			if c.String("image") != "" {
				return usagef("--image: only for --mode image")
			}
			seed, err := isoSeed(c)
			if err != nil {
				return err
			}
			res, err := iso.RemasterAutoinstall(c.String("base"), c.String("output"), seed, epoch)
			if err != nil {
				return err
			}
			for _, n := range res.Notes {
				warnf("%s", n)
			}
			fmt.Fprintf(c.App.Writer, "%s: %s (from %s)\n", c.String("output"), res.Source, c.String("base"))
			return nil
		},
	})
}

// isoSeed is the per-node seed (--node) or the generic one (--server).
func isoSeed(c *cli.Context) (iso.Seed, error) {
	host, server, pl := c.String("node"), c.String("server"), c.String("payload")
	switch {
	case host != "" && server != "":
		return iso.Seed{}, usagef("--node and --server: pick one (a node's ISO or a generic one)")
	case pl != "" && host == "":
		return iso.Seed{}, usagef("--payload: only with --node (the node's first boot installs from it)")
	case server != "":
		ud, err := autoinstall.Generic(server)
		if err != nil {
			return iso.Seed{}, usagef("--server: %v", err)
		}
		return iso.Seed{UserData: ud, MetaData: []byte("instance-id: bainode-generic-autoinstall\n")}, nil
	case host == "":
		return iso.Seed{}, usagef("--node HOSTNAME or --server URL is required")
	}
	site, node, err := loadNode(c, host)
	if err != nil {
		return iso.Seed{}, err
	}
	r, err := render.New(render.Options{Version: version})
	if err != nil {
		return iso.Seed{}, err
	}
	f, err := r.Node(site, node)
	if err != nil {
		return iso.Seed{}, err
	}
	for _, w := range f.Warnings {
		warnf("%s", w)
	}
	var late []string
	switch {
	case pl != "":
		if node.Artifacts != spec.ArtifactsPayload {
			return iso.Seed{}, usagef("--payload: %s's artifacts is %q; the node installs from a payload only with artifacts: payload in the site", host, node.Artifacts)
		}
		if err := payload.CheckImage(pl); err != nil {
			return iso.Seed{}, usagef("--payload: %v", err)
		}
		st, err := os.Stat(pl)
		if err != nil {
			return iso.Seed{}, err
		}
		late = append(late, iso.PayloadCommand(st.Size()))
	case node.Artifacts == spec.ArtifactsPayload:
		warnf("%s installs from a payload (artifacts: payload): attach the payload disk at its first boot, or put it on the ISO with --payload", host)
	}
	ud, err := autoinstall.Wrap(node.Target, f.UserData, f.NetworkConfig, late...)
	if err != nil {
		return iso.Seed{}, err
	}
	return iso.Seed{
		UserData: ud,
		MetaData: []byte("instance-id: " + host + "-autoinstall\n"),
		Secret:   true,
		Payload:  pl,
	}, nil
}

// sourceDateEpoch is SOURCE_DATE_EPOCH, or zero (the source ISO's time).
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %q is not a count of seconds", v)
	}
	return time.Unix(n, 0).UTC(), nil
}
