package main

import (
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fleet"
)

func init() {
	register(fleetUsageErrors(&cli.Command{
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
				Action: clusterList,
			},
			{
				Name:      "remove",
				Aliases:   []string{"rm"},
				Usage:     "remove a stopped member from the cluster",
				ArgsUsage: "MEMBER",
				Flags:     fleetFlags(),
				Action:    clusterRemove,
			},
		},
	}))
}

func clusterList(c *cli.Context) error {
	if pos, err := fleetArgs(c); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("cluster list takes no arguments")
	}
	fc, err := fleetClient(c)
	if err != nil {
		return err
	}
	members, err := fc.Members(c.Context)
	if fleet.IsNotFound(err) {
		return fmt.Errorf("%s is a lone bainoded, not a cluster member", fc.BaseURL)
	} else if err != nil {
		return fleetAPIError(err)
	}
	if c.Bool("json") {
		return fleetJSON(c.App.Writer, members)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tLEADER")
	for _, m := range members {
		leader := ""
		if m.Leader {
			leader = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.ID, m.Address, m.Role, fleetDash(leader))
	}
	return tw.Flush()
}

func clusterRemove(c *cli.Context) error {
	pos, err := fleetArgs(c)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("cluster remove needs exactly one MEMBER (an ID or address from 'bainode cluster list'), got %d arguments", len(pos))
	}
	fc, err := fleetClient(c)
	if err != nil {
		return err
	}
	m, err := fc.RemoveMember(c.Context, pos[0])
	switch {
	case err == nil:
		fmt.Fprintf(c.App.Writer, "member %d (%s, %s) removed\n", m.ID, m.Address, m.Role)
		return nil
	case fleet.StatusCode(err) == http.StatusNotFound:
		return fmt.Errorf("member %s: %w", pos[0], err)
	}
	return fleetAPIError(err)
}
