package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/pxe"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/cmd/internal/imageflags"
)

func init() {
	register(&cli.Command{
		Name:  "pxe",
		Usage: "write the site's netboot tree (pxelinux, shim + signed GRUB, iPXE, kernels, seeds)",
		Description: `Writes DIR/<id>/ in the layout of Ubuntu's netboot tarballs and points the
symlink DIR/current at it:
  pxelinux.0, ldlinux.c32, pxelinux.cfg/01-<mac> and default   BIOS
  bootx64.efi (shim), grubx64.efi (signed grubnet), grub/grub.cfg  UEFI, Secure Boot
  ipxe/boot.ipxe (chains ipxe/01-<mac>.ipxe)                   iPXE
  autoinstall/{linux,initrd,live-server.iso}, autoinstall/seed/<host>/
  image/{vmlinuz,initrd.img}                                   install mode image
The id is a hash of every file and of bainode's version: bainoded serves the
tree at SERVER/pxe/<id>/ with immutable caching, and an older tree stays
where it is while machines still boot from it. Serve DIR/current over TFTP.

Boot loaders are copied from the distribution's packages under --loaders
(default /: the installed pxelinux, syslinux-common, shim-signed and
grub-efi-amd64-signed; or a directory the .debs were unpacked into). Unsigned
EFI binaries are refused.

Install mode image is the default for a node whose role has a baked image
(--image ROLE=FILE.raw.zst, as bainoded's): it boots the deploy environment
of --deploy-env (image/{vmlinuz,initrd.img}), whose agent gets its
configuration, with the node's token, from bainoded at
SERVER/deploy/<mac>/node.cpio; the tree holds no token. Run bainoded with
the same --deploy-env and --image.

Install mode autoinstall, for the other nodes, boots casper from --iso (a
pinned Ubuntu live-server ISO) and wraps each node's cloud-config in
subiquity's autoinstall v1. user-data files are 0600. --mode forces one
mode on every selected node.

Examples:
  bainode pxe -c site.yaml --iso ubuntu-20.04.6-live-server-amd64.iso \
    --server http://10.20.30.1:8080 -o /srv/bainode/pxe
  in.tftpd --secure /srv/bainode/pxe/current     # BIOS and UEFI PXE
  bainoded --pxe-dir /srv/bainode/pxe ...        # GET /pxe/<id>/...
  bainode pxe -c site.yaml --deploy-env env --image agent=agent.raw.zst \
    --iso ubuntu-20.04.6-live-server-amd64.iso --server http://10.20.30.1:8080 -o /srv/bainode/pxe`,
		Flags: siteFlags(slices.Concat([]cli.Flag{outFlag, nodeFlag,
			&cli.StringFlag{Name: "server", Required: true, Usage: "`URL` machines reach bainoded at, http://HOST[:PORT]"},
			&cli.StringFlag{Name: "iso", Usage: "Ubuntu live-server ISO `FILE` for install mode autoinstall"},
			&cli.StringFlag{Name: "kernel", Usage: "kernel `FILE` instead of the ISO's casper/vmlinuz"},
			&cli.StringFlag{Name: "initrd", Usage: "initrd `FILE` instead of the ISO's casper/initrd"},
		}, imageflags.Flags("install mode image", ""), []cli.Flag{
			&cli.StringFlag{Name: "mode", Usage: "install `MODE` of every node: autoinstall or image (default: image where the role has an image)"},
			&cli.StringFlag{Name: "loaders", Value: "/", Usage: "root `DIR` the boot loader packages are installed or unpacked under"},
		})...),
		Action: func(c *cli.Context) error {
			site, nodes, err := prepare(c)
			if err != nil {
				return err
			}
			images, err := imageflags.Images(c)
			if err != nil {
				return usagef("%v", err)
			}
			loaders, err := pxe.FindLoaders(c.String("loaders"))
			if err != nil {
				return err
			}
			r, err := render.New(render.Options{Version: version})
			if err != nil {
				return err
			}
			var in []pxe.NodeInput
			for _, n := range nodes {
				f, err := r.Node(site, n)
				if err != nil {
					return err
				}
				in = append(in, pxe.NodeInput{Hostname: n.Hostname, MAC: n.MAC, Target: n.Target, Role: n.Role,
					UserData: f.UserData, MetaData: f.MetaData, NetworkConfig: f.NetworkConfig})
			}
			server := c.String("server")
			if err := checkServerURL(server); err != nil {
				return usagef("--server: %v", err)
			}
			env := c.String(imageflags.EnvFlag)
			tree, out, err := pxe.Build(pxe.Options{Server: server, Loaders: loaders, ISO: c.String("iso"),
				Kernel: c.String("kernel"), Initrd: c.String("initrd"), Version: version,
				DeployEnv: env, DeployArgs: strings.Fields(c.String(imageflags.KernelArgsFlag)),
				Images: images, Mode: c.String("mode")}, in)
			if err != nil {
				return err
			}
			var imaged []string
			for _, n := range out {
				if n.Entry.Name == pxe.Image {
					imaged = append(imaged, n.Hostname)
				}
			}
			if len(imaged) > 0 {
				// The images stay with bainoded; check them as it will.
				if err := serve.CheckDeploy(&serve.Deploy{Kernel: filepath.Join(env, "vmlinuz"),
					Initrd: filepath.Join(env, "initrd.img"), Images: images}); err != nil {
					return err
				}
			}
			id, err := tree.Seal(version)
			if err != nil {
				return err
			}
			dir, err := tree.Write(c.String("output"), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s\t%d nodes\t%s/pxe/%s/\n", dir, len(in), server, id)
			fmt.Fprintf(c.App.Writer, "TFTP root: %s\n", filepath.Join(c.String("output"), pxe.Current))
			if len(imaged) > 0 {
				fmt.Fprintf(c.App.Writer, "install mode image: %s; run bainoded with the same --deploy-env and --image\n", strings.Join(imaged, " "))
			}
			return nil
		},
	})
}

// checkServerURL keeps the URL to what every boot loader passes unchanged.
func checkServerURL(u string) error {
	rest, ok := cutScheme(u)
	if !ok || rest == "" {
		return fmt.Errorf("%q: want http://HOST[:PORT]", u)
	}
	for _, c := range rest {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return fmt.Errorf("%q: only a host and port, no path (%q)", u, c)
		}
	}
	return nil
}

func cutScheme(u string) (string, bool) {
	for _, p := range []string{"http://", "https://"} {
		if len(u) > len(p) && u[:len(p)] == p {
			return u[len(p):], true
		}
	}
	return "", false
}
