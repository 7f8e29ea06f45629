package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/overlays"
)

// defaultVerifyEnv is where render puts the expectations on a node.
const defaultVerifyEnv = "/etc/bainode/verify.env"

// Paths inside overlays.FS.
const (
	verifyScript     = "verify/bainode-verify"
	verifyEnvExample = "verify/verify.env.example"
)

func init() {
	register(&cli.Command{
		Name:  "verify",
		Usage: "check this host against Backend.AI's Setup OS Environment guide (run as root on the node)",
		Description: `Runs the same checks as the in-guest verifier that bainode installs on
every node (/usr/local/lib/bainode/bainode-verify): the bai user, sudo and
password, limits and sysctl files and their live values, the /etc/hosts
block, /vfroot, Docker and compose, the NVIDIA runtime, the static Python and
its venvs, and the pre-pulled images. On a node, the expectations come from
--env, which bainode's renderer writes there. On a host set up by hand (or
to check a host against a site), --config site.yaml --node NAME (or
--example NAME) derives them from that node's plan, the same values render
would write. When cloud-init never ran on the host (no status.json or
result.json under /run/cloud-init or /var/lib/cloud/data), the cloud-init
checks are skipped, and a note says so.

Exit status: 0 when no check failed, 1 when one did (or the checks could not
run), 2 on bad flags.

Examples:
  sudo bainode verify
  sudo bainode verify --json > report.json
  sudo bainode verify --junit verify.xml
  sudo bainode verify --config site.yaml --node bai-a01
  sudo bainode verify --example single-node
  bainode verify --example-env > my.env; sudo bainode verify --env my.env --no-cloud-init
  bainode verify --from serial.log       # a report captured from a console`,
		Flags: siteFlags(nodeFlag,
			&cli.StringFlag{Name: "env", Value: defaultVerifyEnv, Usage: "expectations `FILE` (shell-sourceable, written by bainode); not with --config/--example"},
			&cli.BoolFlag{Name: "json", Usage: "print the JSON report instead of a table (--format json)"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "print the report as `FORMAT`: " + formatNames()},
			&cli.StringFlag{Name: "junit", Usage: "also write the report as JUnit XML to `FILE`"},
			&cli.StringFlag{Name: "from", Usage: "read a saved report `FILE` (JSON, or a console log with the report markers; - for stdin) instead of checking this host"},
			&cli.BoolFlag{Name: "no-cloud-init", Usage: "skip the cloud-init checks (host not provisioned by cloud-init)"},
			&cli.BoolFlag{Name: "in-cloud-init", Usage: "skip the cloud-init status checks (running from cloud-init's runcmd)"},
			&cli.BoolFlag{Name: "example-env", Usage: "print an example expectations file and exit"},
		),
		Action: runVerify,
	})
}

func runVerify(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("verify takes no arguments, got %q", c.Args().First())
	}
	if c.Bool("example-env") {
		b, err := fs.ReadFile(overlays.FS, verifyEnvExample)
		if err != nil {
			return err
		}
		_, err = c.App.Writer.Write(b)
		return err
	}
	name := c.String("format")
	if c.Bool("json") {
		if c.IsSet("format") && name != "json" {
			return usagef("--json and --format %s exclude each other", name)
		}
		name = "json"
	}
	format, err := verify.FormatNamed(name)
	if err != nil {
		return usageError{err}
	}
	var rep verify.Report
	if from := c.String("from"); from != "" {
		rep, err = readReport(from)
	} else {
		rep, err = runVerifier(c)
	}
	if err != nil {
		return err
	}
	runs := []verify.Run{{Name: rep.Host, Report: rep}}
	if path := c.String("junit"); path != "" {
		var b bytes.Buffer
		if err := verify.WriteJUnitRuns(&b, runs); err != nil {
			return err
		}
		if err := writeFile(path, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write junit report: %w", err)
		}
	}
	if err := format.Write(c.App.Writer, runs); err != nil {
		return err
	}
	if rep.Failed() {
		// A plain error: run() turns it into exit status 1.
		return fmt.Errorf("verify: %d of %d checks failed on %s", rep.Count().Fail, len(rep.Checks), rep.Host)
	}
	return nil
}

// runVerifier runs the embedded script with bash, the same bytes that nodes
// get, so the doctor and the in-guest check cannot drift apart.
func runVerifier(c *cli.Context) (verify.Report, error) {
	if c.Bool("in-cloud-init") && c.Bool("no-cloud-init") {
		return verify.Report{}, usagef("--in-cloud-init and --no-cloud-init exclude each other")
	}
	envFile, cleanup, err := expectations(c)
	if err != nil {
		return verify.Report{}, err
	}
	defer cleanup()
	if os.Geteuid() != 0 {
		return verify.Report{}, errors.New("verify must run as root: it reads /etc/shadow and logs in as the service user (try sudo)")
	}
	noCloudInit := c.Bool("no-cloud-init")
	if !noCloudInit && !c.Bool("in-cloud-init") {
		if ran, looked := cloudInitRan(cloudInitRoots...); !ran {
			fmt.Fprintf(c.App.ErrWriter, "bainode: cloud-init never ran on this host (none of %s): skipping the cloud-init checks\n", strings.Join(looked, ", "))
			noCloudInit = true
		}
	}
	script, err := fs.ReadFile(overlays.FS, verifyScript)
	if err != nil {
		return verify.Report{}, err
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		return verify.Report{}, fmt.Errorf("verify needs bash: %w", err)
	}
	f, err := os.CreateTemp("", "bainode-verify-*")
	if err != nil {
		return verify.Report{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(script); err != nil {
		f.Close()
		return verify.Report{}, err
	}
	if err := f.Close(); err != nil {
		return verify.Report{}, err
	}

	args := []string{f.Name(), "--env", envFile}
	if c.Bool("in-cloud-init") {
		args = append(args, "--in-cloud-init")
	}
	if noCloudInit {
		args = append(args, "--no-cloud-init")
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(c.Context, bash, args...)
	cmd.Stdout = &out
	cmd.Stderr = c.App.ErrWriter
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		err = nil // some check failed; the report says which
	}
	if err != nil {
		return verify.Report{}, fmt.Errorf("run verifier: %w", err)
	}
	return verify.Parse(&out)
}

// expectations is the verify.env to check against: --env, or the one
// render writes for the --node of --config/--example, in a temporary file
// that cleanup removes.
func expectations(c *cli.Context) (path string, cleanup func(), err error) {
	cleanup = func() {}
	fromSite := c.IsSet("config") || c.IsSet("example")
	if !fromSite {
		for _, f := range []string{"node", "target"} {
			if c.IsSet(f) {
				return "", cleanup, usagef("--%s picks from a site: give --config FILE or --example NAME too", f)
			}
		}
		path = c.String("env")
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) && !c.IsSet("env") {
				return "", cleanup, fmt.Errorf("no expectations file %s: bainode did not provision this host; "+
					"derive the expectations from its site with --config site.yaml --node NAME (or --example NAME)", path)
			}
			return "", cleanup, fmt.Errorf("cannot read the expectations file: %w", err)
		}
		return path, cleanup, nil
	}
	if c.IsSet("env") {
		return "", cleanup, usagef("--env and --config/--example exclude each other: the expectations come from one place")
	}
	site, nodes, err := prepare(c)
	if err != nil {
		return "", cleanup, err
	}
	if len(nodes) != 1 {
		var names []string
		for _, n := range nodes {
			names = append(names, n.Hostname)
		}
		return "", cleanup, usagef("verify checks one host: choose it with --node (one of %s)", strings.Join(names, ", "))
	}
	r, err := render.New(render.Options{Version: version})
	if err != nil {
		return "", cleanup, err
	}
	b, err := r.VerifyEnv(site, nodes[0])
	if err != nil {
		return "", cleanup, err
	}
	f, err := os.CreateTemp("", "bainode-verify-env-*")
	if err != nil {
		return "", cleanup, err
	}
	cleanup = func() { os.Remove(f.Name()) }
	if _, err := f.Write(b); err != nil {
		f.Close()
		cleanup()
		return "", func() {}, err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", func() {}, err
	}
	return f.Name(), cleanup, nil
}

// cloudInitRoots are where cloud-init leaves status.json and result.json:
// for this boot, and kept across boots.
var cloudInitRoots = []string{"/run/cloud-init", "/var/lib/cloud/data"}

// cloudInitRan says whether cloud-init left a status or result under any
// of roots (ds-identify alone, which runs even when no datasource is
// found, leaves neither); looked lists the files tried.
func cloudInitRan(roots ...string) (ran bool, looked []string) {
	for _, r := range roots {
		for _, f := range []string{"status.json", "result.json"} {
			p := filepath.Join(r, f)
			looked = append(looked, p)
			if _, err := os.Stat(p); err == nil {
				ran = true
			}
		}
	}
	return ran, looked
}

func formatNames() string {
	var names []string
	for _, f := range verify.Formats {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// readReport reads a saved JSON report, or extracts one from a console log.
func readReport(path string) (verify.Report, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return verify.Report{}, err
	}
	if bytes.Contains(b, []byte(verify.BeginMarker)) {
		rep, err := verify.Extract(b)
		if err != nil {
			return verify.Report{}, fmt.Errorf("%s: %w", path, err)
		}
		return rep, nil
	}
	rep, err := verify.Parse(bytes.NewReader(b))
	if err != nil {
		return verify.Report{}, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}
