package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fleet"
)

// nodesTokenCommand is "bainode nodes token": a node's reporting token.
var nodesTokenCommand = &cli.Command{
	Name:  "token",
	Usage: "rotate or revoke a node's reporting token",
	Description: `A node reports its progress with a token of its own, which bainoded puts
in the node's vendor-data. "rotate" replaces it: the old token stops working
at once, and the node gets the new one the next time it fetches its seed.
"revoke" stops the token from working: the node cannot report until its
token is rotated. Neither changes what else the node's seed holds.

Examples:
  bainode nodes token rotate gpu01
  bainode nodes token revoke gpu01`,
	Subcommands: []*cli.Command{
		{
			Name:      "rotate",
			Usage:     "give a node a new reporting token; the old one stops working",
			ArgsUsage: "HOSTNAME",
			Flags:     fleetFlags(),
			Action:    fleetAction("", nodesTokenRotate),
		},
		{
			Name:      "revoke",
			Usage:     "stop a node's reporting token from working until it is rotated",
			ArgsUsage: "HOSTNAME",
			Flags:     fleetFlags(),
			Action:    fleetAction("", nodesTokenRevoke),
		},
	},
}

func init() {
	fleetCommand(&cli.Command{
		Name:  "tokens",
		Usage: "list, add and revoke bainoded's admin tokens",
		Description: `Admin tokens let operators use bainoded's admin API. Each member registers
the token in its --admin-token-file (DATA/admin.token) at start; "tokens add"
makes more, one per person or tool, so they can be revoked one by one.

bainoded keeps only a token's SHA-256. "tokens list" shows each token's ID,
name and the first characters of that hash; a token from a token file has no
name. "tokens add" prints the new token once, on stdout, and never again.
A revoked token stays revoked: a member whose token file holds one refuses
to start until the file holds a new token. No token can revoke itself.

Examples:
  bainode tokens list
  bainode tokens add ci --output ci.token   # a new file, mode 0600
  bainode tokens rm 3`,
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list the active admin tokens",
				Flags:  fleetFlags(fleetJSONFlag),
				Action: fleetAction("", tokensList),
			},
			{
				Name:      "add",
				Usage:     "make a new admin token and print it once, on stdout",
				ArgsUsage: "NAME",
				Flags: fleetFlags(&cli.StringFlag{Name: "output", Aliases: []string{"o"},
					Usage: "write the token to a new `FILE` (mode 0600) instead of stdout"}),
				Action: fleetAction("(the person or tool it is for)", tokensAdd),
			},
			{
				Name:      "rm",
				Aliases:   []string{"revoke"},
				Usage:     "revoke admin tokens for good (not the one you are using)",
				ArgsUsage: "ID...",
				Flags:     fleetFlags(),
				Action:    fleetAction("(see bainode tokens list)", tokensRemove),
			},
		},
	})
}

func nodesTokenRotate(c *cli.Context, fc *fleet.Client, args []string) error {
	host := args[0]
	if _, err := fc.RotateNodeToken(c.Context, host); err != nil {
		return fleetNotFound(err, "node %s: not found", host)
	}
	fmt.Fprintf(c.App.Writer, "node %s: token rotated; the old one no longer works. "+
		"The node gets the new one in vendor-data the next time it fetches its seed.\n", host)
	return nil
}

func nodesTokenRevoke(c *cli.Context, fc *fleet.Client, args []string) error {
	host := args[0]
	if err := fc.RevokeNodeToken(c.Context, host); err != nil {
		return fleetNotFound(err, "node %s: not found", host)
	}
	fmt.Fprintf(c.App.Writer, "node %s: token revoked; it cannot report until `bainode nodes token rotate %s`\n", host, host)
	return nil
}

func tokensList(c *cli.Context, fc *fleet.Client, _ []string) error {
	list, err := fc.AdminTokens(c.Context)
	if err != nil {
		return err
	}
	return fleetPrint(c, list, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSHA256\tCREATED\t")
		for _, t := range list {
			name, mark := t.Name, ""
			if name == "" {
				name = "(token file)"
			}
			if t.Current {
				mark = "(this token)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\n", t.ID, name, t.Prefix, t.Created.Local().Format("2006-01-02 15:04"), mark)
		}
		return tw.Flush()
	})
}

func tokensAdd(c *cli.Context, fc *fleet.Client, args []string) error {
	out := c.String("output")
	if out != "" {
		// Check first: a token made but not saved would have to be revoked.
		if _, err := os.Lstat(out); err == nil {
			return usagef("--output %s exists; tokens add only writes new files", out)
		}
	}
	t, err := fc.CreateAdminToken(c.Context, args[0])
	if err != nil {
		return err
	}
	if out != "" {
		if err := writeFile(out, []byte(t.Token+"\n"), 0o600); err != nil {
			return fmt.Errorf("admin token %d was created but not saved (revoke it with bainode tokens rm %d): %w",
				t.ID, t.ID, err)
		}
		fmt.Fprintf(c.App.ErrWriter, "admin token %d (%s) written to %s; bainoded keeps only its hash, "+
			"so it is not shown again.\n", t.ID, t.Name, out)
		return nil
	}
	// The token alone on stdout, so a pipe gets just it; the note goes to
	// stderr.
	if _, err := fmt.Fprintln(c.App.Writer, t.Token); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "admin token %d (%s) created. Store it now: it is not shown again, "+
		"bainoded keeps only its hash.\n", t.ID, t.Name)
	return nil
}

func tokensRemove(c *cli.Context, fc *fleet.Client, args []string) error {
	var ids []int64
	for _, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return usagef("token ID %q is not a number (see bainode tokens list)", a)
		}
		ids = append(ids, id)
	}
	var errs []error
	for _, id := range ids {
		if err := fc.RevokeAdminToken(c.Context, id); err != nil {
			errs = append(errs, fleetNotFound(err, "admin token %d: not found (or already revoked)", id))
			continue
		}
		fmt.Fprintf(c.App.Writer, "admin token %d revoked\n", id)
	}
	return errors.Join(errs...)
}
