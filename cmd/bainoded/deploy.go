package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/serve"
)

// deployConfig reads the image-mode flags; nil when none is set.
func deployConfig(c *cli.Context) (*serve.Deploy, error) {
	dir, images := c.String("deploy-env"), c.StringSlice("image")
	if dir == "" && len(images) == 0 {
		return nil, nil
	}
	if dir == "" || len(images) == 0 {
		return nil, fmt.Errorf("image mode needs both --deploy-env and --image")
	}
	d := &serve.Deploy{
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		Images: map[string]string{}, Disk: serve.SiteDisk, KernelArgs: c.String("deploy-kernel-args"),
	}
	for _, im := range images {
		role, file, ok := strings.Cut(im, "=")
		if !ok || role == "" || file == "" {
			return nil, fmt.Errorf("--image %q: want ROLE=FILE.raw.zst", im)
		}
		d.Images[role] = file
	}
	if err := serve.CheckDeploy(d); err != nil {
		return nil, err
	}
	return d, nil
}
