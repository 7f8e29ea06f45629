package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/fleet"
)

// The fleet commands (nodes, site, status, tokens, cluster) talk to
// bainoded's admin API. bainode itself stays pure Go: builder/fleet is a
// plain HTTP client. This file holds what they share: the connection
// flags, the argument handling, the client and the printing.

const fleetDefaultServer = "http://127.0.0.1:8081" // bainoded's default --admin-listen

// fleetCommand registers a fleet command whose bad flags, at any depth,
// exit 2, as register does for commands.
func fleetCommand(c *cli.Command) {
	var walk func(*cli.Command)
	walk = func(c *cli.Command) {
		for _, sub := range c.Subcommands {
			sub.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
			walk(sub)
		}
	}
	walk(c)
	register(c)
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

// fleetAction is the plumbing of every fleet command: it applies the flags
// written after the arguments, checks how many arguments there are against
// the command's ArgsUsage ("" none, "X" one, "X..." one or more; hint is
// added to the complaint), builds the client from the connection flags,
// runs call, and adds a hint to the API's errors an operator can fix here.
func fleetAction(hint string, call func(c *cli.Context, api *fleet.Client, args []string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		args, err := fleetArgs(c)
		if err != nil {
			return err
		}
		if err := fleetArity(c, args, hint); err != nil {
			return err
		}
		api, err := fleetClient(c)
		if err != nil {
			return err
		}
		return fleetAPIError(call(c, api, args))
	}
}

// fleetArity checks the number of positional arguments.
func fleetArity(c *cli.Context, args []string, hint string) error {
	var path []string
	for _, l := range c.Lineage() {
		if l.Command != nil && l.Command.Name != "" && l.Command.Name != c.App.Name {
			path = append([]string{l.Command.Name}, path...)
		}
	}
	name := strings.Join(path, " ")
	want, many := strings.CutSuffix(c.Command.ArgsUsage, "...")
	if hint != "" {
		hint = " " + hint
	}
	switch {
	case want == "" && len(args) > 0:
		return usagef("%s takes no arguments", name)
	case want != "" && many && len(args) == 0:
		return usagef("%s needs at least one %s%s", name, want, hint)
	case want != "" && !many && len(args) != 1:
		return usagef("%s needs exactly one %s%s, got %d arguments", name, want, hint, len(args))
	}
	return nil
}

// fleetArgs returns the positional arguments and applies the flags written
// after them: "nodes add HOST --mac M" is how people type it, but
// urfave/cli v2 parses flags with the standard flag package, which stops
// at the first positional argument, and has no option to go on (v1
// reordered the arguments, v3 parses flags anywhere).
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

// fleetPrint prints v as the server's JSON with --json, else as table
// writes it.
func fleetPrint(c *cli.Context, v any, table func(w io.Writer) error) error {
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return table(c.App.Writer)
}

// fleetDash shows an empty server-sent value as "-", and escapes the rest.
func fleetDash(s string) string {
	if s == "" {
		return "-"
	}
	return termSafe(s)
}

// fleetCut escapes s and shortens it to n runes for a table cell.
func fleetCut(s string, n int) string {
	s = termSafe(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// fleetNotFound says what a 404 was about, in the words format makes;
// other errors pass.
func fleetNotFound(err error, format string, a ...any) error {
	if fleet.IsNotFound(err) {
		return fmt.Errorf(format, a...)
	}
	return err
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
