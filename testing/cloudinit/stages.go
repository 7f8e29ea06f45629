package cloudinit

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

//go:embed sandbox.sh
var sandbox []byte

// Run is what the four stages left behind in the sandbox.
type Run struct {
	Dir        string // copies of /etc/passwd, /etc/group, logs, under root/
	Status     string // `cloud-init status --long`
	StatusExit int
	Log        string // the stages' own output with exit codes
	Stat       map[string]Stat
	// With a hook (StagesHook): its output and exit code, and the paths
	// stat'ed again after it.
	HookOut, HookErr string
	HookExit         int
	After            map[string]Stat
}

// Stat is a path's owner and mode in the sandbox.
type Stat struct {
	UID, GID int
	Mode     string // octal, e.g. "644"
	Type     string
	Missing  bool
}

// File reads a file copied out of the sandbox's root ("etc/passwd").
func (r *Run) File(rel string) string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "root", rel))
	return string(b)
}

// CloudCfg writes /etc/cloud/cloud.cfg as Ubuntu's package renders it
// (config/cloud.cfg.tmpl, variant ubuntu). The Debian tree keeps its own.
func (tr *Tree) CloudCfg(ctx context.Context, dst string) error {
	return tr.Render(ctx, filepath.Join(tr.Dir, "config", "cloud.cfg.tmpl"), dst)
}

// Render renders one of the tree's templates for variant ubuntu with the
// tree's own tool, as its setup.py does for the package.
func (tr *Tree) Render(ctx context.Context, tmpl, dst string) error {
	tool := filepath.Join(tr.Dir, "tools", "render-template")
	if _, err := os.Stat(tool); err != nil {
		tool = filepath.Join(tr.Dir, "tools", "render-cloudcfg")
	}
	c := exec.CommandContext(ctx, Python, tr.shim, "run", tool, "--variant", "ubuntu", tmpl, dst)
	c.Env = tr.Env()
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: render %s: %v\n%s", tr.Name, filepath.Base(tmpl), err, out)
	}
	return nil
}

// Stages runs `init --local`, `init`, `modules --mode config` and
// `modules --mode final` against the NoCloud seed in seedDir, in private
// mount, pid, uts, ipc and net namespaces on an overlay of the host's root
// with a tmpfs upper layer (see sandbox.sh); needs root. paths are stat'ed
// inside before it ends. work must be an empty directory.
func (tr *Tree) Stages(ctx context.Context, work, seedDir string, paths []string) (*Run, error) {
	return tr.StagesHook(ctx, work, seedDir, paths, nil)
}

// StagesHook is Stages, then runs hook (a program, e.g. a script with a #!
// line) as root in the sandbox's root with this tree as `cloud-init` on
// PATH, and stat's paths again into Run.After; /etc/machine-id as the hook
// left it is under Run.Dir/after.
func (tr *Tree) StagesHook(ctx context.Context, work, seedDir string, paths []string, hook []byte) (*Run, error) {
	script := filepath.Join(work, "sandbox.sh")
	if err := os.WriteFile(script, sandbox, 0o755); err != nil {
		return nil, err
	}
	cfg := ""
	if tr.Dir != "" {
		cfg = filepath.Join(work, "etc-cloud")
		if err := os.MkdirAll(filepath.Join(cfg, "cloud.cfg.d"), 0o755); err != nil {
			return nil, err
		}
		if err := tr.CloudCfg(ctx, filepath.Join(cfg, "cloud.cfg")); err != nil {
			return nil, err
		}
		// The package installs config/cloud.cfg.d and templates/ as they are.
		if err := os.Mkdir(filepath.Join(cfg, "templates"), 0o755); err != nil {
			return nil, err
		}
		for glob, sub := range map[string]string{"config/cloud.cfg.d/*.cfg": "cloud.cfg.d", "templates/*.tmpl": "templates"} {
			ds, _ := filepath.Glob(filepath.Join(tr.Dir, glob))
			for _, d := range ds {
				b, err := os.ReadFile(d)
				if err != nil {
					return nil, err
				}
				if err := os.WriteFile(filepath.Join(cfg, sub, filepath.Base(d)), b, 0o644); err != nil {
					return nil, err
				}
			}
		}
	}
	mnt := filepath.Join(work, "mnt")
	out := filepath.Join(work, "out")
	for _, d := range []string{mnt, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	args := []string{"--mount", "--pid", "--uts", "--ipc", "--net", "--fork",
		"--propagation", "private", "bash", script, mnt, seedDir, cfg, tr.path, tr.shim}
	if hook != nil {
		h := filepath.Join(work, "hook")
		if err := os.WriteFile(h, hook, 0o755); err != nil {
			return nil, err
		}
		args = append(args, h)
	}
	c := exec.CommandContext(ctx, "unshare", args...)
	c.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
	var tarball, stderr bytes.Buffer
	c.Stdout, c.Stderr = &tarball, &stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("%s: sandbox: %v\n%s", tr.Name, err, stderr.Bytes())
	}
	x := exec.CommandContext(ctx, "tar", "-xf", "-", "-C", out)
	x.Stdin = &tarball
	if b, err := x.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: sandbox output: %v\n%s", tr.Name, err, b)
	}
	read := func(f string) string { b, _ := os.ReadFile(filepath.Join(out, f)); return string(b) }
	r := &Run{Dir: out, Stat: stats(read("stat"))}
	r.Status, r.Log = read("status"), read("stages.log")
	var err error
	if r.StatusExit, err = strconv.Atoi(strings.TrimSpace(read("status.rc"))); err != nil {
		return nil, fmt.Errorf("%s: no status exit code\n%s\n%s", tr.Name, r.Log, stderr.Bytes())
	}
	if hook != nil {
		r.HookOut, r.HookErr, r.After = read("hook.out"), read("hook.err"), stats(read("stat.after"))
		if r.HookExit, err = strconv.Atoi(strings.TrimSpace(read("hook.rc"))); err != nil {
			return nil, fmt.Errorf("%s: no hook exit code\n%s\n%s", tr.Name, r.Log, stderr.Bytes())
		}
	}
	return r, nil
}

// stats parses the sandbox's `stat` lines.
func stats(s string) map[string]Stat {
	m := map[string]Stat{}
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[1] == "missing":
			m[f[0]] = Stat{Missing: true}
		case len(f) >= 5:
			u, _ := strconv.Atoi(f[1])
			g, _ := strconv.Atoi(f[2])
			m[f[0]] = Stat{UID: u, GID: g, Mode: f[3], Type: strings.Join(f[4:], " ")}
		}
	}
	return m
}
