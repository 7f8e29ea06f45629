// Package imageflags holds the image-mode flags that bainode pxe and
// bainoded share, so that "run bainoded with the same --deploy-env and
// --image" stays true: the same names, the same forms, the same errors.
package imageflags

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

const (
	EnvFlag        = "deploy-env"
	ImageFlag      = "image"
	KernelArgsFlag = "deploy-kernel-args"
)

// Flags returns --deploy-env, --image and --deploy-kernel-args, each usage
// prefixed with what the command calls image mode; kernelArgs is the
// default of --deploy-kernel-args.
func Flags(prefix, kernelArgs string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: EnvFlag, Usage: prefix + ": `DIR` from 'bainode deploy-env' (vmlinuz, initrd.img)"},
		&cli.StringSliceFlag{Name: ImageFlag, Usage: prefix + ": `ROLE=FILE.raw.zst` baked image of a role, its bake manifest beside it (repeatable)"},
		&cli.StringFlag{Name: KernelArgsFlag, Value: kernelArgs, Usage: prefix + ": `ARGS` added to the deploy kernel's command line (e.g. console=ttyS0)"},
	}
}

// Images reads every --image ROLE=FILE into a map by role. A role given
// twice is refused: the second would silently win.
func Images(c *cli.Context) (map[string]string, error) {
	images := map[string]string{}
	for _, im := range c.StringSlice(ImageFlag) {
		role, file, ok := strings.Cut(im, "=")
		if !ok || role == "" || file == "" {
			return nil, fmt.Errorf("--image %q: want ROLE=FILE.raw.zst", im)
		}
		if prev, dup := images[role]; dup {
			return nil, fmt.Errorf("--image: role %s is given twice (%s and %s)", role, prev, file)
		}
		images[role] = file
	}
	return images, nil
}
