package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fleet"
)

// The fleet commands talk to bainoded's admin API. bainode itself stays
// pure Go: builder/fleet is a plain HTTP client.

const fleetDefaultServer = "http://127.0.0.1:8081" // bainoded's default --admin-listen

func init() {
	register(fleetUsageErrors(&cli.Command{
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
				Action: nodesAdd,
			},
			{
				Name:   "list",
				Usage:  "list the nodes",
				Flags:  fleetFlags(fleetJSONFlag),
				Action: nodesList,
			},
			{
				Name:      "show",
				Usage:     "show a node and its latest events",
				ArgsUsage: "HOSTNAME",
				Flags: fleetFlags(fleetJSONFlag,
					&cli.IntFlag{Name: "events", Value: 20, Usage: "show the last `N` events (0: all)"}),
				Action: nodesShow,
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove nodes (their events are kept)",
				ArgsUsage: "HOSTNAME...",
				Flags:     fleetFlags(),
				Action:    nodesRemove,
			},
			{
				Name:      "redeploy",
				Usage:     "re-arm an image-mode node: its next network boot writes its role's image again",
				ArgsUsage: "HOSTNAME",
				Flags:     fleetFlags(),
				Action:    nodesRedeploy,
			},
			nodesTokenCommand,
		},
	}))
	register(fleetUsageErrors(&cli.Command{
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
				Action: sitePush,
			},
		},
	}))
	register(&cli.Command{
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
		Action: fleetStatus,
	})
}

// fleetUsageErrors makes bad flags of subcommands, at any depth, exit 2,
// as register does for commands.
func fleetUsageErrors(c *cli.Command) *cli.Command {
	for _, sub := range c.Subcommands {
		sub.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
		fleetUsageErrors(sub)
	}
	return c
}

var fleetJSONFlag = &cli.BoolFlag{Name: "json", Usage: "print the server's JSON"}

// fleetFlags are the connection flags of every fleet command. The token has
// no EnvVars on purpose: urfave/cli would show its value as the default in
// --help.
func fleetFlags(more ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"BAINODE_SERVER"},
			Value: fleetDefaultServer, Usage: "bainoded `URL` (any cluster member), or unix:PATH for an admin socket"},
		&cli.StringFlag{Name: "token-file", Usage: "read the admin token from `FILE` (bainoded's DATA/admin.token)"},
		&cli.StringFlag{Name: "token", Usage: "admin `TOKEN` (default $BAINODE_TOKEN; visible in ps, prefer --token-file)"},
	}, more...)
}

// fleetArgs returns the positional arguments and applies the flags written
// after them: urfave/cli stops at the first positional, but
// "nodes add HOST --mac M" is how people type it.
func fleetArgs(c *cli.Context) ([]string, error) {
	in := c.Args().Slice()
	var pos []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			pos = append(pos, in[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fleetLookupFlag(c.Command.Flags, name)
		if f == nil {
			return nil, usagef("flag provided but not defined: %s", a)
		}
		if _, isBool := f.(*cli.BoolFlag); isBool {
			if !hasVal {
				val = "true"
			}
		} else if !hasVal {
			if i+1 == len(in) {
				return nil, usagef("flag needs an argument: %s", a)
			}
			i++
			val = in[i]
		}
		if err := c.Set(name, val); err != nil {
			return nil, usagef("invalid value %q for flag %s: %v", val, a, err)
		}
	}
	return pos, nil
}

func fleetLookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// fleetClient builds the API client from the connection flags.
func fleetClient(c *cli.Context) (*fleet.Client, error) {
	fc := &fleet.Client{BaseURL: c.String("server"), HTTP: &http.Client{Timeout: 30 * time.Second}}
	if _, err := fc.Base(); err != nil {
		return nil, usagef("--server: %v", err)
	}
	tok, file := c.String("token"), c.String("token-file")
	switch {
	case tok != "" && file != "":
		return nil, usagef("--token and --token-file are exclusive")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("--token-file: %v", err)
		}
		tok = strings.TrimSpace(string(b))
		if tok == "" {
			return nil, usagef("--token-file %s is empty", file)
		}
	case tok == "":
		tok = strings.TrimSpace(os.Getenv("BAINODE_TOKEN"))
	}
	if tok == "" {
		return nil, usagef("no admin token: use --token-file (bainoded writes DATA/admin.token, by default /var/lib/bainoded/admin.token), or set BAINODE_TOKEN")
	}
	fc.Token = tok
	return fc, nil
}

// fleetAPIError adds a hint to the errors an operator can fix on this side.
func fleetAPIError(err error) error {
	switch fleet.StatusCode(err) {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w (check the admin token: --token-file, --token or BAINODE_TOKEN)", err)
	}
	return err
}

// fleetHost returns the single HOSTNAME argument.
func fleetHost(c *cli.Context) (string, error) {
	pos, err := fleetArgs(c)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usagef("nodes %s needs exactly one HOSTNAME, got %d arguments", c.Command.Name, len(pos))
	}
	return pos[0], nil
}

func nodesAdd(c *cli.Context) error {
	host, err := fleetHost(c)
	if err != nil {
		return err
	}
	fc, err := fleetClient(c)
	if err != nil {
		return err
	}
	n := fleet.Node{Hostname: host, MACs: c.StringSlice("mac"), IP: c.String("ip"), Role: c.String("role")}
	if f := c.String("overrides"); f != "" {
		b, err := fleetRead(f)
		if err != nil {
			return usagef("--overrides: %v", err)
		}
		n.Overrides = string(b)
	}
	if !c.Bool("replace") {
		_, err := fc.Node(c.Context, host)
		if err == nil {
			return fmt.Errorf("node %s already exists; use --replace to overwrite it", host)
		} else if !fleet.IsNotFound(err) {
			return fleetAPIError(err)
		}
	}
	out, err := fc.PutNode(c.Context, n)
	if err != nil {
		return fleetAPIError(err)
	}
	fmt.Fprintf(c.App.Writer, "node %s saved", out.Hostname)
	if len(out.MACs) > 0 {
		fmt.Fprintf(c.App.Writer, " (mac %s)", strings.Join(out.MACs, ", "))
	}
	fmt.Fprintln(c.App.Writer)
	return nil
}

func nodesList(c *cli.Context) error {
	if pos, err := fleetArgs(c); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("nodes list takes no arguments")
	}
	fc, err := fleetClient(c)
	if err != nil {
		return err
	}
	nodes, err := fc.Nodes(c.Context)
	if err != nil {
		return fleetAPIError(err)
	}
	if c.Bool("json") {
		return fleetJSON(c.App.Writer, nodes)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOSTNAME\tROLE\tIP\tMACS\tOVERRIDES")
	for _, n := range nodes {
		ov := "-"
		if n.Overrides != "" {
			ov = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Hostname, fleetDash(n.Role), fleetDash(n.IP), fleetDash(strings.Join(n.MACs, ",")), ov)
	}
	return tw.Flush()
}

func nodesShow(c *cli.Context) error {
	host, err := fleetHost(c)
	if err != nil {
		return err
	}
	fc, err := fleetClient(c)
	if err != nil {
		return err
	}
	n, err := fc.Node(c.Context, host)
	if fleet.IsNotFound(err) {
		return fmt.Errorf("node %s: not found", host)
	} else if err != nil {
		return fleetAPIError(err)
	}
	limit := c.Int("events")
	if limit < 0 {
		return usagef("--events must be >= 0")
	}
	events, err := fc.Events(c.Context, host, limit)
	if err != nil {
		return fleetAPIError(err)
	}
	w := c.App.Writer
	if c.Bool("json") {
		return fleetJSON(w, struct {
			fleet.Node
			Events []fleet.Event `json:"events"`
		}{n, events})
	}
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
		fmt.Fprintln(w, "events:    none (the node has not reported)")
		return nil
	}
	fmt.Fprintf(w, "events (last %d, oldest first):\n", len(events))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tEVENT\tRESULT\tDETAIL")
	for _, e := range events {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), termSafe(e.Stage), termSafe(e.Result), fleetDash(fleetCut(e.Detail, 100)))
	}
	return tw.Flush()
}

func nodesRemove(c *cli.Context) error {
	hosts, err := fleetArgs(c)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return usagef("nodes rm needs at least one HOSTNAME")
	}
	fc, err := fleetClient(c)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hosts {
		err := fc.DeleteNode(c.Context, h)
		switch {
		case err == nil:
			fmt.Fprintf(c.App.Writer, "node %s removed\n", h)
		case fleet.IsNotFound(err):
			errs = append(errs, fmt.Errorf("node %s: not found", h))
		default:
			errs = append(errs, fleetAPIError(err))
		}
	}
	return errors.Join(errs...)
}

func sitePush(c *cli.Context) error {
	pos, err := fleetArgs(c)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("site push needs exactly one site file (- for stdin)")
	}
	file := pos[0]
	fc, err := fleetClient(c)
	if err != nil {
		return err
	}
	b, err := fleetRead(file)
	if err != nil {
		return usagef("%v", err)
	}
	v, err := fc.PushSite(c.Context, b)
	var ae *fleet.Error
	if errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest {
		// The server parses the body as "site.yaml"; name the file the
		// operator pushed so editors can jump to the line.
		msg := ae.Message
		if file != "-" {
			var lines []string
			for _, l := range strings.Split(msg, "\n") {
				if rest, ok := strings.CutPrefix(l, "site.yaml:"); ok {
					l = file + ":" + rest
				}
				lines = append(lines, l)
			}
			msg = strings.Join(lines, "\n")
		}
		return usageError{fmt.Errorf("bainoded rejected %s (nothing was stored):\n%s", fleetInputName(file), msg)}
	} else if err != nil {
		return fleetAPIError(err)
	}
	fmt.Fprintf(c.App.Writer, "site version %d stored (%s, %d bytes)\n", v.ID, fleetInputName(file), len(b))
	return nil
}

func fleetInputName(file string) string {
	if file == "-" {
		return "stdin"
	}
	return file
}

func fleetRead(file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(file)
}

func fleetJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fleetIsTTY reports whether w is a character device (a terminal), where
// --watch redraws in place.
func fleetIsTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func nodesRedeploy(c *cli.Context) error {
	host, err := fleetHost(c)
	if err != nil {
		return err
	}
	fc, err := fleetClient(c)
	if err != nil {
		return err
	}
	if err := fc.Redeploy(c.Context, host); err != nil {
		return fleetAPIError(err)
	}
	fmt.Fprintf(c.App.Writer, "node %s re-armed: its next network boot deploys its image again\n", host)
	return nil
}
