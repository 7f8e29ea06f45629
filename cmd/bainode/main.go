// Command bainode turns Backend.AI's "Setup OS Environment" guide into
// cloud-init seeds, images and checks. It is pure Go (CGO_ENABLED=0).
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/urfave/cli/v2"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

// commands is filled by each cmd_*.go file's init, so a command lives in one file.
var commands []*cli.Command

func register(c *cli.Command) {
	if c.OnUsageError == nil {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	}
	commands = append(commands, c)
}

// usageError marks errors that exit with status 2 (bad flags, invalid site file).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	return &cli.App{
		Name:                 "bainode",
		Usage:                "prepare Backend.AI manager and agent hosts with cloud-init",
		Version:              version,
		EnableBashCompletion: true,
		Commands:             commands,
		Description: `bainode reads one site file (or a built-in example) and produces, for every
node, the cloud-init files and NoCloud seed that carry out Backend.AI's
"Setup OS Environment" guide: the bai user (uid/gid 1100), limits and sysctl
files, Docker with compose, NVIDIA drivers and toolkit, a static Python with
one venv per service, /etc/hosts aliases, /vfroot storage and image pre-pulls.

Examples:
  bainode init site.yaml                 # write a commented site file
  bainode validate --config site.yaml    # check it; errors name file:line:col
  bainode plan --config site.yaml        # what each node gets, and from where
  bainode render --config site.yaml -o out
  bainode seed --example cluster -o out  # out/<host>/seed.iso per node
  bainode passwd                         # hash a password for the site file`,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError{err} },
		Suggest:      true,
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "bainode: no command %q; see 'bainode --help'\n", name)
			os.Exit(exitUsage)
		},
	}
}

func main() { os.Exit(run(os.Args)) }

func run(args []string) int {
	err := newApp().Run(args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "bainode:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return exitFailure
}
