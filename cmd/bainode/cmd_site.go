package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fleet"
)

func init() {
	fleetCommand(&cli.Command{
		Name:  "site",
		Usage: "manage the site file bainoded renders seeds from",
		Subcommands: []*cli.Command{
			{
				Name:      "push",
				Usage:     "validate and store a new version of the site file on bainoded",
				ArgsUsage: "SITE.yaml",
				Description: `Sends the site file to bainoded, which checks it and renders every
registered node against it before storing it. A rejected file is reported
with file:line:column per problem and exit status 2; nothing is stored then.
Nodes booting afterwards get seeds from the new version.

Examples:
  bainode site push site.yaml
  bainode site push - < site.yaml`,
				Flags:  fleetFlags(),
				Action: fleetAction("(- for stdin)", sitePush),
			},
		},
	})
}

func sitePush(c *cli.Context, api *fleet.Client, args []string) error {
	file := args[0]
	b, err := fleetRead(file)
	if err != nil {
		return usagef("%v", err)
	}
	v, err := api.PushSite(c.Context, b)
	var ae *fleet.Error
	if errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest {
		return usageError{fmt.Errorf("bainoded rejected %s (nothing was stored):\n%s", fleetInputName(file), siteProblems(ae, file))}
	} else if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "site version %d stored (%s, %d bytes)\n", v.ID, fleetInputName(file), len(b))
	return nil
}

// siteProblems are the server's problems, each named after the file the
// operator pushed (the server only saw a body), so editors can jump to the
// line. A server that answers in text is quoted as is.
func siteProblems(ae *fleet.Error, file string) string {
	if len(ae.Problems) == 0 {
		return ae.Message
	}
	lines := make([]string, len(ae.Problems))
	for i, p := range ae.Problems {
		p.File = fleetInputName(file)
		lines[i] = termSafe(p.String())
	}
	return strings.Join(lines, "\n")
}
