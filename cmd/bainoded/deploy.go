package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/cmd/internal/imageflags"
)

// deployConfig reads the image-mode flags; nil when none is set.
func deployConfig(c *cli.Context) (*serve.Deploy, error) {
	dir := c.String(imageflags.EnvFlag)
	images, err := imageflags.Images(c)
	if err != nil {
		return nil, err
	}
	if dir == "" && len(images) == 0 {
		return nil, nil
	}
	if dir == "" || len(images) == 0 {
		return nil, fmt.Errorf("image mode needs both --deploy-env and --image")
	}
	d := &serve.Deploy{
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		Images: images, Disk: serve.SiteDisk, KernelArgs: c.String(imageflags.KernelArgsFlag),
	}
	if err := serve.CheckDeploy(d); err != nil {
		return nil, err
	}
	return d, nil
}
