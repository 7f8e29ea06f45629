package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fleet"
)

func init() {
	fleetCommand(&cli.Command{
		Name:  "nodes",
		Usage: "add, list, show and remove the nodes bainoded serves; rotate their tokens",
		Description: `Manages the inventory of a running bainoded through its admin API. Every
subcommand takes --server and the admin token (see "bainode status --help").

A node is its hostname, the MACs it boots from, and optionally an IP (used
by bainoded --bind-ip), a role and a YAML file of overrides merged over the
site for this node only. A node the site file does not list is rendered as
if it were appended to the site's nodes.

Examples:
  bainode nodes add gpu01 --mac 52:54:00:aa:bb:01 --role agent --ip 10.20.30.21
  bainode nodes list
  bainode nodes show gpu01
  bainode nodes token rotate gpu01   # new reporting token (see "nodes token --help")
  bainode nodes redeploy gpu01       # image it again on its next network boot
  bainode nodes rm gpu01`,
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "register a node (refuses to replace one without --replace)",
				ArgsUsage: "HOSTNAME",
				Flags: fleetFlags(
					&cli.StringSliceFlag{Name: "mac", Usage: "`MAC` the node boots from (repeatable; any notation)"},
					&cli.StringFlag{Name: "ip", Usage: "the node's `IP` (bainoded --bind-ip serves its seed only to it)"},
					&cli.StringFlag{Name: "role", Usage: "`ROLE`, e.g. manager, agent, storage"},
					&cli.StringFlag{Name: "overrides", Usage: "YAML `FILE` merged over the site for this node (- for stdin)"},
					&cli.BoolFlag{Name: "replace", Usage: "replace the node if it exists (its MACs, IP, role and overrides)"},
				),
				Action: fleetAction("", nodesAdd),
			},
			{
				Name:   "list",
				Usage:  "list the nodes",
				Flags:  fleetFlags(fleetJSONFlag),
				Action: fleetAction("", nodesList),
			},
			{
				Name:      "show",
				Usage:     "show a node and its latest events",
				ArgsUsage: "HOSTNAME",
				Flags: fleetFlags(fleetJSONFlag,
					&cli.IntFlag{Name: "events", Value: 20, Usage: "show the last `N` events (0: all)"}),
				Action: fleetAction("", nodesShow),
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove nodes (their events are kept)",
				ArgsUsage: "HOSTNAME...",
				Flags:     fleetFlags(),
				Action:    fleetAction("", nodesRemove),
			},
			{
				Name:      "redeploy",
				Usage:     "re-arm an image-mode node: its next network boot writes its role's image again",
				ArgsUsage: "HOSTNAME",
				Flags:     fleetFlags(),
				Action:    fleetAction("", nodesRedeploy),
			},
			nodesTokenCommand,
		},
	})
}

func nodesAdd(c *cli.Context, api *fleet.Client, args []string) error {
	host := args[0]
	n := fleet.Node{Hostname: host, MACs: c.StringSlice("mac"), IP: c.String("ip"), Role: c.String("role")}
	if f := c.String("overrides"); f != "" {
		b, err := fleetRead(f)
		if err != nil {
			return usagef("--overrides: %v", err)
		}
		n.Overrides = string(b)
	}
	if !c.Bool("replace") {
		if _, err := api.Node(c.Context, host); err == nil {
			return fmt.Errorf("node %s already exists; use --replace to overwrite it", host)
		} else if !fleet.IsNotFound(err) {
			return err
		}
	}
	out, err := api.PutNode(c.Context, n)
	var ae *fleet.Error
	if errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest && len(ae.Problems) > 0 {
		// The stored site cannot render this node: each problem names the
		// field of the site with the node merged in.
		lines := make([]string, len(ae.Problems))
		for i, p := range ae.Problems {
			p.File = "node " + host
			lines[i] = termSafe(p.String())
		}
		return usageError{fmt.Errorf("bainoded rejected node %s (nothing was stored):\n%s", host, strings.Join(lines, "\n"))}
	} else if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "node %s saved", out.Hostname)
	if len(out.MACs) > 0 {
		fmt.Fprintf(c.App.Writer, " (mac %s)", strings.Join(out.MACs, ", "))
	}
	fmt.Fprintln(c.App.Writer)
	return nil
}

func nodesList(c *cli.Context, api *fleet.Client, _ []string) error {
	nodes, err := api.Nodes(c.Context)
	if err != nil {
		return err
	}
	return fleetPrint(c, nodes, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOSTNAME\tROLE\tIP\tMACS\tOVERRIDES")
		for _, n := range nodes {
			ov := "-"
			if n.Overrides != "" {
				ov = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Hostname, fleetDash(n.Role), fleetDash(n.IP), fleetDash(strings.Join(n.MACs, ",")), ov)
		}
		return tw.Flush()
	})
}

func nodesShow(c *cli.Context, api *fleet.Client, args []string) error {
	host := args[0]
	n, err := api.Node(c.Context, host)
	if err != nil {
		return fleetNotFound(err, "node %s: not found", host)
	}
	limit := c.Int("events")
	if limit < 0 {
		return usagef("--events must be >= 0")
	}
	events, err := api.Events(c.Context, host, limit)
	if err != nil {
		return err
	}
	out := struct {
		fleet.Node
		Events []fleet.Event `json:"events"`
	}{n, events}
	return fleetPrint(c, out, func(w io.Writer) error {
		fmt.Fprintf(w, "hostname:  %s\nrole:      %s\nip:        %s\nmacs:      %s\n",
			termSafe(n.Hostname), fleetDash(n.Role), fleetDash(n.IP), fleetDash(strings.Join(n.MACs, ", ")))
		if n.TokenRevoked {
			fmt.Fprintf(w, "token:     revoked (bainode nodes token rotate %s)\n", n.Hostname)
		}
		if n.Overrides != "" {
			fmt.Fprintf(w, "overrides: |\n")
			for _, l := range strings.Split(strings.TrimRight(n.Overrides, "\n"), "\n") {
				fmt.Fprintf(w, "  %s\n", termSafe(l))
			}
		}
		if len(events) == 0 {
			_, err := fmt.Fprintln(w, "events:    none (the node has not reported)")
			return err
		}
		fmt.Fprintf(w, "events (last %d, oldest first):\n", len(events))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tEVENT\tRESULT\tDETAIL")
		for _, e := range events {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), termSafe(e.Stage), termSafe(e.Result), fleetDash(fleetCut(e.Detail, 100)))
		}
		return tw.Flush()
	})
}

func nodesRemove(c *cli.Context, api *fleet.Client, hosts []string) error {
	var errs []error
	for _, h := range hosts {
		if err := api.DeleteNode(c.Context, h); err != nil {
			errs = append(errs, fleetNotFound(err, "node %s: not found", h))
			continue
		}
		fmt.Fprintf(c.App.Writer, "node %s removed\n", h)
	}
	return errors.Join(errs...)
}

func nodesRedeploy(c *cli.Context, api *fleet.Client, args []string) error {
	if err := api.Redeploy(c.Context, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "node %s re-armed: its next network boot deploys its image again\n", args[0])
	return nil
}
