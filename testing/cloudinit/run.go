package cloudinit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Command is the cloud-init command line of this tree.
func (tr *Tree) Command(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, Python, append([]string{tr.shim, "cli"}, args...)...)
	c.Env = tr.Env()
	return c
}

// Env is the environment that runs this tree: PYTHONPATH names the tree
// (and 20.1's Jinja2 2.x); the Debian tree uses dist-packages.
func (tr *Tree) Env() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PYTHONPATH=") && !strings.HasPrefix(e, "PYTHONHOME=") {
			env = append(env, e)
		}
	}
	if tr.path != "" {
		env = append(env, "PYTHONPATH="+tr.path)
	}
	return env
}

// Shim is the path of the launcher; `python3 SHIM cli ARGS` is cloud-init.
func (tr *Tree) Shim() string { return tr.shim }

// SchemaResult is one file's `cloud-init schema` outcome.
type SchemaResult struct {
	File string `json:"file"`
	Exit int    `json:"rc"`
	Out  string `json:"out"`
}

// OldSchemaCLI says the schema command is `devel schema --config-file`
// (up to 22.1) rather than `schema -c` (22.2 on).
func (tr *Tree) OldSchemaCLI() bool {
	var maj, min int
	fmt.Sscanf(tr.Version, "%d.%d", &maj, &min)
	return maj < 22 || (maj == 22 && min < 2)
}

// Schema runs the schema check of this version on each file, in one
// Python process: starting cloud-init costs about a second.
func (tr *Tree) Schema(ctx context.Context, files ...string) ([]SchemaResult, error) {
	old := "0"
	if tr.OldSchemaCLI() {
		old = "1"
	}
	c := exec.CommandContext(ctx, Python, append([]string{tr.shim, "schema", old}, files...)...)
	c.Env = tr.Env()
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return nil, fmt.Errorf("%s schema: %v\n%s", tr.Name, err, stderr.Bytes())
	}
	var res []SchemaResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var r SchemaResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s schema: %v in %q", tr.Name, err, sc.Text())
		}
		res = append(res, r)
	}
	if len(res) != len(files) {
		return nil, fmt.Errorf("%s schema: %d results for %d files\n%s", tr.Name, len(res), len(files), stderr.Bytes())
	}
	return res, nil
}
