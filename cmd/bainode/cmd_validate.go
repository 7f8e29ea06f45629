package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/spec"
)

func init() {
	register(&cli.Command{
		Name:  "validate",
		Usage: "check a site file and report every problem with file:line:column",
		Description: `Reads the site file strictly: unknown keys, wrong types and bad values are
errors, all reported at once. Warnings (file:line:col too) do not fail the
check unless --strict is given. Exit status 2 when the file has problems.

Examples:
  bainode validate --config site.yaml
  bainode validate --strict --config site.yaml
  bainode validate --example cluster`,
		Flags: siteFlags(&cli.BoolFlag{Name: "strict", Usage: "treat warnings as errors"}),
		Action: func(c *cli.Context) error {
			site, err := loadSite(c)
			if err != nil {
				return err
			}
			if len(site.Warnings) > 0 && c.Bool("strict") {
				return usageError{&spec.Error{Problems: site.Warnings}}
			}
			for _, w := range site.Warnings {
				fmt.Fprintln(c.App.ErrWriter, w.String())
			}
			fmt.Fprintf(c.App.Writer, "%s: ok, %d node(s), target %s\n", sourceName(c), len(site.Nodes), site.Target)
			return nil
		},
	})
}

func sourceName(c *cli.Context) string {
	if f := c.String("config"); f != "" {
		return f
	}
	if e := c.String("example"); e != "" {
		return "example " + e
	}
	return "example " + defaultExample
}
