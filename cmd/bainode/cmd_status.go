package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fleet"
)

func init() {
	fleetCommand(&cli.Command{
		Name:  "status",
		Usage: "show each node's provisioning progress as bainoded saw it",
		Description: `One line per node: its latest cloud-init event (STAGE is the cloud-init
stage, EVENT the full event name), how long ago it came and its result
(start, success, warn, fail; done after phone_home; pending if the node
never reported). --watch redraws the table every --interval until ^C.

The fleet commands (nodes, site, status, tokens, cluster) find bainoded
with --server or $BAINODE_SERVER (default ` + fleetDefaultServer + `; unix:PATH for
bainoded --admin-listen unix:PATH) and authenticate with
the admin token bainoded wrote to DATA/admin.token: --token-file FILE,
--token TOKEN or $BAINODE_TOKEN, in that order. Prefer the file or the
variable: a --token on the command line is visible to other users in ps.

Examples:
  BAINODE_SERVER=https://10.0.0.1:8081 bainode status --token-file admin.token
  bainode status --watch --interval 5s
  bainode status --server unix:/run/bainoded/admin.sock --token-file admin.token`,
		Flags: fleetFlags(fleetJSONFlag,
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "redraw until interrupted"},
			&cli.DurationFlag{Name: "interval", Value: 2 * time.Second, Usage: "redraw every `D` with --watch"},
		),
		Action: fleetAction("", fleetStatus),
	})
}

// fleetStatus is bainode status: one table row per node, redrawn with
// --watch.
func fleetStatus(c *cli.Context, fc *fleet.Client, _ []string) error {
	w := c.App.Writer
	if !c.Bool("watch") {
		st, err := fc.Status(c.Context)
		if err != nil {
			return err
		}
		return fleetPrint(c, st, func(w io.Writer) error { return fleetStatusTable(w, st, time.Now()) })
	}
	if c.Bool("json") {
		return usagef("--watch and --json are exclusive")
	}
	every := c.Duration("interval")
	if every < 100*time.Millisecond {
		return usagef("--interval %s is too short", every)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tty := fleetIsTTY(w)
	for {
		// Draw into a buffer first so a slow server never leaves the
		// screen blank.
		var b bytes.Buffer
		if tty {
			b.WriteString("\x1b[H\x1b[2J") // home, clear
		}
		qctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		st, err := fc.Status(qctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		fmt.Fprintf(&b, "%s  every %s  (^C to stop)\n", now.Format("15:04:05"), every)
		if err != nil {
			// Keep watching: the server may be restarting or failing over.
			fmt.Fprintf(&b, "error: %v\n", fleetAPIError(err))
		} else {
			fleetStatusTable(&b, st, now)
		}
		if !tty {
			b.WriteString("\n")
		}
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// fleetStatusTable prints NODE STAGE EVENT AGE RESULT, one line per node.
func fleetStatusTable(w io.Writer, st []fleet.NodeStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	deploys := slices.ContainsFunc(st, func(s fleet.NodeStatus) bool { return s.Deploy != nil })
	if deploys {
		fmt.Fprintln(tw, "NODE\tDEPLOY\tSTAGE\tEVENT\tAGE\tRESULT")
	} else {
		fmt.Fprintln(tw, "NODE\tSTAGE\tEVENT\tAGE\tRESULT")
	}
	counts := map[string]int{}
	for _, s := range st {
		stage, event, age := "-", "-", "-"
		if s.Stage != "" {
			event = s.Stage
			stage, _, _ = strings.Cut(s.Stage, "/")
		}
		if !s.Time.IsZero() {
			age = fleetAge(now.Sub(s.Time))
		}
		fmt.Fprintf(tw, "%s\t", termSafe(s.Node))
		if deploys {
			d := "-"
			if s.Deploy != nil {
				d = fleetDash(s.Deploy.Result)
			}
			fmt.Fprintf(tw, "%s\t", d)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", termSafe(stage), fleetCut(event, 48), age, fleetDash(s.Result))
		counts[s.Result]++
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st) == 0 {
		_, err := fmt.Fprintln(w, "no nodes registered (bainode nodes add)")
		return err
	}
	var parts []string
	for _, r := range []string{"done", "success", "start", "warn", "fail", "pending"} {
		if counts[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
			delete(counts, r)
		}
	}
	for r, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, termSafe(r)))
	}
	_, err := fmt.Fprintf(w, "%d node(s): %s\n", len(st), strings.Join(parts, ", "))
	return err
}

// fleetAge is a short age: 42s, 5m, 3h12m, 2d4h.
func fleetAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s" // clocks of server and client differ
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
