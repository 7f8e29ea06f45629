package main

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/templates"
)

func init() {
	register(&cli.Command{
		Name:      "init",
		Usage:     "write a commented site file that shows every option",
		ArgsUsage: "[FILE]",
		Description: `Writes a site file with every key, its default from the guide, and a
comment. With --example it writes that built-in site instead. Without FILE it
prints to standard output. It never overwrites an existing file.

Examples:
  bainode init site.yaml
  bainode init --example cluster cluster.yaml`,
		Flags: []cli.Flag{&cli.StringFlag{Name: "example", Usage: "write built-in example `NAME` instead: " + strings.Join(exampleNames(), ", ")}},
		Action: func(c *cli.Context) error {
			name := "site.yaml"
			if ex := c.String("example"); ex != "" {
				if _, err := fs.Stat(templates.FS, path.Join("examples", ex+".yaml")); err != nil {
					return usagef("no built-in example %q", ex)
				}
				name = path.Join("examples", ex+".yaml")
			}
			b, err := fs.ReadFile(templates.FS, name)
			if err != nil {
				return err
			}
			if c.NArg() == 0 {
				_, err = c.App.Writer.Write(b)
				return err
			}
			if c.NArg() > 1 {
				return usagef("init takes one FILE")
			}
			dst := c.Args().First()
			if _, err := os.Stat(dst); err == nil {
				return fmt.Errorf("%s already exists; not overwriting it", dst)
			}
			if err := writeFile(dst, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "wrote %s; check it with: bainode validate --config %s\n", dst, dst)
			return nil
		},
	})
	register(&cli.Command{
		Name:  "version",
		Usage: "print bainode's version",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "bainode %s\n", version)
			return nil
		},
	})
}
