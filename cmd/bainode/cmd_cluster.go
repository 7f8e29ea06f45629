package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fleet"
)

func init() {
	fleetCommand(&cli.Command{
		Name:  "cluster",
		Usage: "list and remove the members of a replicated bainoded",
		Description: `Talks to any member's admin API, with the same --server and admin token
as the other fleet commands (see "bainode status --help"). Members are
shown as the raft leader sees them; MEMBER is an ID or a cluster address
from that list.

Remove a member for good after stopping it: it leaves the raft
configuration, so an offline voter no longer counts against the quorum.
Removing the last voter, or the member --server points at, is refused.
When a majority of voters is lost, no leader can change the membership:
use "bainoded recover" on a surviving member instead.

Examples:
  bainode cluster list
  bainode cluster remove 10.0.0.3:9001`,
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list the members, their raft roles and the leader",
				Flags:  fleetFlags(fleetJSONFlag),
				Action: fleetAction("", clusterList),
			},
			{
				Name:      "remove",
				Aliases:   []string{"rm"},
				Usage:     "remove a stopped member from the cluster",
				ArgsUsage: "MEMBER",
				Flags:     fleetFlags(),
				Action:    fleetAction("(an ID or address from 'bainode cluster list')", clusterRemove),
			},
		},
	})
}

func clusterList(c *cli.Context, fc *fleet.Client, _ []string) error {
	members, err := fc.Members(c.Context)
	if err != nil {
		return fleetNotFound(err, "%s is a lone bainoded, not a cluster member", fc.BaseURL)
	}
	return fleetPrint(c, members, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tLEADER")
		for _, m := range members {
			leader := ""
			if m.Leader {
				leader = "yes"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.ID, m.Address, m.Role, fleetDash(leader))
		}
		return tw.Flush()
	})
}

func clusterRemove(c *cli.Context, fc *fleet.Client, args []string) error {
	m, err := fc.RemoveMember(c.Context, args[0])
	if fleet.IsNotFound(err) {
		return fmt.Errorf("member %s: %w", args[0], err)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "member %d (%s, %s) removed\n", m.ID, m.Address, m.Role)
	return nil
}
