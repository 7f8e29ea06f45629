package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/deploy"
)

// The deploy environment carries bainode itself as its agent: one release
// artefact, already built static (CGO_ENABLED=0) by the Makefile, at the
// cost of a few MiB over a separate agent binary.
func init() {
	register(&cli.Command{
		Name:  "deploy-env",
		Usage: "assemble the image-mode deploy environment (kernel and initramfs) for bainoded",
		Description: `Writes DIR/vmlinuz and DIR/initrd.img: the kernel of a Debian or Ubuntu
linux-image package, an initramfs with busybox, the disk and network
drivers with their dependencies, and this bainode as the deploy agent.
bainoded serves them with --deploy-env DIR.

Examples:
  bainode deploy-env -o env --kernel linux-image-6.1.0-28-amd64_6.1.119-1_amd64.deb \
      --busybox busybox-static_1.35.0-4+b3_amd64.deb
  bainode deploy-env -o env --kernel vmlinuz --modules initrd.img --busybox /bin/busybox`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "output `DIR`"},
			&cli.StringFlag{Name: "kernel", Required: true, Usage: "linux-image `.deb` or a bzImage"},
			&cli.StringSliceFlag{Name: "modules", Usage: "where the modules come from: linux-image/linux-modules `.deb`s or an initramfs for the kernel (default: --kernel)"},
			&cli.StringFlag{Name: "busybox", Required: true, Usage: "busybox-static `.deb` or a static busybox"},
			&cli.StringFlag{Name: "agent", Usage: "static bainode `FILE` to run as the agent (default: this bainode)"},
		},
		Action: func(c *cli.Context) error {
			agent := c.String("agent")
			if agent == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				agent = exe
			}
			mods := c.StringSlice("modules")
			if len(mods) == 0 {
				mods = []string{c.String("kernel")}
			}
			if err := os.MkdirAll(c.String("output"), 0o755); err != nil {
				return err
			}
			env, err := deploy.Assemble(deploy.EnvOptions{Kernel: c.String("kernel"), Modules: mods,
				Busybox: c.String("busybox"), Agent: agent}, c.String("output"))
			if err != nil {
				return err
			}
			st, _ := os.Stat(env.Initrd)
			fmt.Fprintf(c.App.Writer, "%s, %s: kernel %s, %d modules, initramfs %.1f MiB\n",
				env.Kernel, env.Initrd, env.KernelVersion, len(env.Modules), float64(st.Size())/(1<<20))
			if len(env.Missing) > 0 {
				fmt.Fprintf(c.App.ErrWriter, "not in this kernel's modules (built in, or absent): %s\n", strings.Join(env.Missing, " "))
			}
			return nil
		},
	})
	register(&cli.Command{
		Name:   "deploy-agent",
		Hidden: true,
		Usage:  "write this node's image to its disk (runs inside the deploy environment)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Value: "/etc/bainode/deploy.json", Usage: "agent configuration `FILE`"},
		},
		Action: func(c *cli.Context) error {
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			logf := func(format string, a ...any) {
				fmt.Fprintf(c.App.ErrWriter, "bainode-deploy: "+format+"\n", a...)
			}
			cmdline, _ := os.ReadFile("/proc/cmdline")
			cfg, err := deploy.LoadConfig(ctx, c.String("config"), string(cmdline), deploy.System{Logf: logf})
			if errors.Is(err, deploy.ErrDeployed) {
				return cli.Exit("bainode-deploy: "+err.Error(), deploy.ExitDeployed)
			}
			if err != nil {
				return err
			}
			from := cfg.Server
			if cfg.Image.Medium != "" {
				from = "the boot medium " + cfg.Image.Medium
			}
			cfg.Reimage = deploy.CmdlineFlag(string(cmdline), deploy.ReimageArg)
			logf("node %s, image %s from %s", cfg.Node, cfg.Image.SHA256, from)
			err = deploy.Run(ctx, cfg, deploy.System{Logf: logf})
			if errors.Is(err, deploy.ErrDeployed) {
				return cli.Exit("bainode-deploy: "+err.Error(), deploy.ExitDeployed)
			}
			return err
		},
	})
}
