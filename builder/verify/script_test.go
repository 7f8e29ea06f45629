package verify

// These tests run the real in-guest verifier (overlays/verify/bainode-verify)
// on this host, as root, with expectations written to temp files. The host is
// not a Backend.AI node, so each check family is driven both ways: to FAIL
// against the host as it is, and to PASS with root standing in for the bai
// user, temp files standing in for /etc files (the script's optional path
// overrides) and stand-in tools on PATH for what the host lacks (cloud-init
// results, systemd, dockerd, sudo, a GPU). A verifier that cannot fail is
// worthless, and one that cannot pass is no better.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lablup/bainode/builder/render"
)

const (
	scriptPath  = "../../overlays/verify/bainode-verify"
	wrapperPath = "../../overlays/verify/bainode-verify-report"
)

// needHost stops a test that needs root and bash; in CI that is a failure,
// never a skip.
func needHost(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range append([]string{"bash"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("this test needs %s", strings.Join(missing, ", "))
	}
	t.Skipf("needs %s", strings.Join(missing, ", "))
}

// baseEnv turns every optional part off and uses root, which every host
// has, as the service user.
func baseEnv() map[string]string {
	return map[string]string{
		"BAI_USER": "root", "BAI_UID": "0", "BAI_GID": "0", "BAI_SHELL": rootShell(),
		"BAI_SUDO_NOPASSWD": "1", "BAI_HOME": "/root",
		"LIMITS_FILE": "", "LIMIT_NOFILE": "0", "LIMIT_NPROC": "0", "SYSCTL_FILE": "",
		"HOSTS_ALIASES": "", "HOSTS_BEGIN": render.HostsBegin, "HOSTS_END": render.HostsEnd,
		"VFROOT_DIRS": "", "VFROOT_NFS": "",
		"DOCKER": "0", "COMPOSE": "0", "PYTHON_VERSION": "", "PYTHON_HOME": "",
		"PYTHON_VENVS": "", "GPU": "0", "GPU_COUNT": "", "IMAGES": "",
	}
}

// guideEnv is the guide's node: user bai, 1100:1100, everything on.
func guideEnv() map[string]string {
	return map[string]string{
		"BAI_USER": "bai", "BAI_UID": "1100", "BAI_GID": "1100", "BAI_SHELL": "/bin/bash",
		"BAI_SUDO_NOPASSWD": "1",
		"LIMITS_FILE":       "/etc/security/limits.d/99-backendai.conf", "LIMIT_NOFILE": "512000", "LIMIT_NPROC": "65536",
		"SYSCTL_FILE": "/etc/sysctl.d/99-backendai.conf", "HOSTS_ALIASES": "bai-m1 bai-a01 bai-a02",
		"HOSTS_BEGIN": render.HostsBegin, "HOSTS_END": render.HostsEnd,
		"VFROOT_DIRS": "local", "VFROOT_NFS": "data1", "DOCKER": "1", "COMPOSE": "1",
		"PYTHON_VERSION": "3.12.4", "PYTHON_HOME": "/home/bai/.static-python/versions/3.12.4",
		"PYTHON_VENVS": "manager agent", "GPU": "0", "GPU_COUNT": "", "IMAGES": "cr.backend.ai/stable/python:3.9-ubuntu20.04",
	}
}

func rootShell() string {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "/bin/sh"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) == 7 && f[0] == "root" {
			return f[6]
		}
	}
	return "/bin/sh"
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func writeEnv(t *testing.T, env map[string]string) string {
	t.Helper()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# written by script_test.go\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, shQuote(env[k]))
	}
	return writeFile(t, filepath.Join(t.TempDir(), "verify.env"), b.String(), 0o644)
}

// fakeBin writes stand-in tools (bash bodies) and returns the PATH setting
// that puts them first.
func fakeBin(t *testing.T, tools map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range tools {
		writeFile(t, filepath.Join(dir, name), "#!/bin/bash\n"+body+"\n", 0o755)
	}
	return "PATH=" + dir + ":" + os.Getenv("PATH")
}

type result struct {
	rep    Report
	raw    []byte
	code   int
	stderr string
}

// runScript runs the verifier and checks what holds for every run: exit 0
// or 1 matching the report, a report that parses (so ids are unique and the
// summary adds up), nothing on stderr, no family cut short.
func runScript(t *testing.T, env map[string]string, environ []string, args ...string) result {
	t.Helper()
	return runScriptAt(t, scriptPath, env, environ, args...)
}

func runScriptAt(t *testing.T, script string, env map[string]string, environ []string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", append([]string{script, "--env", writeEnv(t, env)}, args...)...)
	cmd.Env = append(os.Environ(), environ...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 0 && code != 1 {
		t.Fatalf("exit %d, want 0 or 1; stderr:\n%s", code, stderr.String())
	}
	rep, err := Parse(bytes.NewReader(stdout.Bytes()))
	if err != nil {
		t.Fatalf("report does not parse: %v\n%s", err, stdout.String())
	}
	var table bytes.Buffer
	_ = WriteTable(&table, rep)
	t.Logf("verifier report (exit %d):\n%s", code, table.String())
	if got, want := code == 1, rep.Failed(); got != want {
		t.Errorf("exit %d but Failed() = %v", code, want)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr not empty:\n%s", stderr.String())
	}
	seen := map[string]bool{}
	for _, c := range rep.Checks {
		if seen[c.ID] {
			t.Errorf("duplicate id %q", c.ID)
		}
		seen[c.ID] = true
		if strings.HasSuffix(c.ID, ".verifier") || strings.Contains(c.ID, "#") {
			t.Errorf("verifier bug reported: %+v", c)
		}
		if c.Status == StatusSkip && c.Detail == "" {
			t.Errorf("%s: skip without a reason", c.ID)
		}
		if c.Status == StatusFail && c.Detail == "" {
			t.Errorf("%s: fail without a detail", c.ID)
		}
	}
	return result{rep: rep, raw: stdout.Bytes(), code: code, stderr: stderr.String()}
}

func (r result) get(t *testing.T, id string) Check {
	t.Helper()
	for _, c := range r.rep.Checks {
		if c.ID == id {
			return c
		}
	}
	var ids []string
	for _, c := range r.rep.Checks {
		ids = append(ids, c.ID)
	}
	t.Fatalf("no check %q; have %s", id, strings.Join(ids, " "))
	return Check{}
}

// has asserts that each id's field ("actual" or "detail") contains its
// string.
func (r result) has(t *testing.T, field string, want map[string]string) {
	t.Helper()
	for id, w := range want {
		c := r.get(t, id)
		got := c.Actual
		if field == "detail" {
			got = c.Detail
		}
		if !strings.Contains(got, w) {
			t.Errorf("%s %s: got %q, want it to contain %q", id, field, got, w)
		}
	}
}

// want asserts the status of each id.
func (r result) want(t *testing.T, status string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if c := r.get(t, id); c.Status != status {
			t.Errorf("%s: got %s, want %s (expected %q, actual %q, detail %q)", id, c.Status, status, c.Expected, c.Actual, c.Detail)
		}
	}
}

// wantAll asserts that every check has status, except the listed ones.
func (r result) wantAll(t *testing.T, status string, except map[string]string) {
	t.Helper()
	for _, c := range r.rep.Checks {
		want := status
		if s, ok := except[c.ID]; ok {
			want = s
		}
		if c.Status != want {
			t.Errorf("%s: got %s, want %s (expected %q, actual %q, detail %q)", c.ID, c.Status, want, c.Expected, c.Actual, c.Detail)
		}
	}
	for id := range except {
		r.get(t, id)
	}
}

func liveSysctl(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	if err != nil {
		t.Fatalf("read live %s: %v", key, err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// hostLimits: soft/hard nofile and nproc of a root login, as the script sees them.
func hostLimits(t *testing.T) [4]string {
	t.Helper()
	out, err := exec.Command("su", "-l", "-s", "/bin/bash", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Su; ulimit -Hu", "root").Output()
	if err != nil {
		t.Fatalf("su: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 4 {
		t.Fatalf("su printed %q", out)
	}
	f = f[len(f)-4:]
	return [4]string{f[0], f[1], f[2], f[3]}
}

var guideLimits = `root hard nofile 512000
root soft nofile 512000
root hard nproc 65536
root soft nproc 65536
bai hard nofile 512000
bai soft nofile 512000
bai hard nproc 65536
bai soft nproc 65536
`

// The brief's scenario: the guide's expectations on a plain Debian host
// with no bai user and no docker daemon.
func TestScriptOnThisHost(t *testing.T) {
	needHost(t, "su", "getent")
	dir := t.TempDir()
	env := guideEnv()
	somax := liveSysctl(t, "net.core.somaxconn")
	env["SYSCTL_FILE"] = writeFile(t, filepath.Join(dir, "99-backendai.conf"),
		"# as the guide prints it\n"+
			`net.ipv4.ip_local_port_range="10000 65000"`+"\n"+
			"net.core.somaxconn = "+somax+"\n"+
			"fs.file-max=1\n", 0o644)
	env["LIMITS_FILE"] = writeFile(t, filepath.Join(dir, "limits.conf"),
		strings.Replace(guideLimits, "bai soft nproc 65536\n", "", 1), 0o644)
	r := runScript(t, env, nil)

	if r.code != 1 {
		t.Errorf("exit: got %d, want 1", r.code)
	}
	r.want(t, StatusPass, "env.file", "sysctl.file", "sysctl.net.core.somaxconn", "sysctl.fs.file-max", "limits.file")
	r.want(t, StatusFail, "user.uid", "user.gid", "user.primary_group", "user.home", "user.shell",
		"user.member.sudo", "user.member.docker", "user.sudo", "user.shadow",
		"limits.lines", "limits.effective.user",
		"sysctl.net.ipv4.ip_local_port_range",
		"cloudinit.status", "cloudinit.result", "cloudinit.boot_finished", "cloudinit.datasource",
		"hosts.block", "hosts.alias.bai-m1", "hosts.alias.bai-a01", "hosts.alias.bai-a02",
		"vfroot.root", "vfroot.dir.local", "vfroot.nfs.data1", "vfroot.nfs.data1.owner",
		"docker.active", "docker.user_access", "docker.compose",
		"python.version", "python.modules", "python.venv.manager", "python.venv.agent",
		"image.cr.backend.ai/stable/python:3.9-ubuntu20.04")
	r.want(t, StatusSkip, "gpu.nvidia_runtime", "gpu.module", "gpu.nvidia_smi", "gpu.persistenced", "gpu.container")
	// pam_limits cannot raise a hard limit without CAP_SYS_RESOURCE (a
	// container): the verifier says so instead of failing.
	if canRaise(t, 512000, 65536) {
		r.want(t, StatusFail, "limits.effective.root")
	} else {
		r.want(t, StatusSkip, "limits.effective.root")
	}

	if c := r.get(t, "sysctl.net.ipv4.ip_local_port_range"); !strings.Contains(c.Detail, "quoted") || !strings.Contains(c.Detail, "net.ipv4.ip_local_port_range = 10000 65000") {
		t.Errorf("quoted sysctl detail: got %q, want the reason and the fix", c.Detail)
	}
	if c := r.get(t, "sysctl.net.core.somaxconn"); c.Actual != somax || c.Expected != somax {
		t.Errorf("somaxconn: got expected %q actual %q, want %q", c.Expected, c.Actual, somax)
	}
	if c := r.get(t, "limits.lines"); c.Actual != "missing: bai soft nproc 65536" {
		t.Errorf("limits.lines actual: got %q, want %q", c.Actual, "missing: bai soft nproc 65536")
	}
}

// Every part turned off reports its ids as skip, with the reason.
func TestScriptPartsOff(t *testing.T) {
	needHost(t, "su", "getent")
	r := runScript(t, baseEnv(), nil, "--no-cloud-init")
	r.want(t, StatusSkip, "cloudinit.status", "cloudinit.result", "cloudinit.boot_finished", "cloudinit.datasource",
		"limits.file", "limits.lines", "limits.effective.user", "limits.effective.root",
		"sysctl.file", "hosts.block", "vfroot.root", "docker.active", "docker.user_access", "docker.compose",
		"user.member.docker", "gpu.nvidia_runtime", "gpu.nvidia_smi",
		"python.version", "python.modules", "python.venvs", "images")
	r.want(t, StatusPass, "env.file", "user.uid", "user.gid", "user.primary_group", "user.home", "user.shell")
	for _, c := range r.rep.Checks {
		if c.Status == StatusSkip && strings.HasPrefix(c.ID, "cloudinit.") && !strings.Contains(c.Detail, "--no-cloud-init") {
			t.Errorf("%s: skip reason %q does not name --no-cloud-init", c.ID, c.Detail)
		}
	}
}

func TestScriptEnvFile(t *testing.T) {
	needHost(t)
	missingKey := baseEnv()
	delete(missingKey, "GPU")
	badUID := baseEnv()
	badUID["BAI_UID"] = "11OO"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--env", "/nonexistent/verify.env"}, "missing"},
		{"missing key", []string{"--env", writeEnv(t, missingKey)}, "missing: GPU"},
		{"bad uid", []string{"--env", writeEnv(t, badUID)}, "BAI_UID=11OO"},
		{"not shell", []string{"--env", writeFile(t, filepath.Join(t.TempDir(), "e"), "BAI_USER='bai\n", 0o644)}, "source failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// --env given twice: the last one wins, as in the script's loop.
			r := runScript(t, baseEnv(), nil, tt.args...)
			if len(r.rep.Checks) != 1 {
				t.Errorf("checks: got %d, want only env.file", len(r.rep.Checks))
			}
			c := r.get(t, "env.file")
			if c.Status != StatusFail || !strings.Contains(c.Actual, tt.want) {
				t.Errorf("env.file: got %s %q, want fail with %q", c.Status, c.Actual, tt.want)
			}
		})
	}
}

// fixture is a host made to look like a finished Backend.AI node, with
// root as the service user.
type fixture struct {
	env     map[string]string
	environ []string
	bin     string // the stand-in tools
}

const resultOK = `{
 "v1": {
  "datasource": "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]",
  "errors": [],
  "recoverable_errors": {
   "WARNING": [
    "Deprecated cloud-config provided: users.uid as a string"
   ]
  }
 }
}
`

const statusOK = `{
 "v1": {
  "datasource": "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]",
  "init": {"errors": [], "finished": 12.5, "start": 10.1},
  "stage": null
 }
}
`

func passFixture(t *testing.T) fixture {
	dir := t.TempDir()
	env := baseEnv()
	lim := hostLimits(t)
	// pam_limits applies the host's real files, so expect what a root login
	// really gets; the check needs soft == hard.
	var lines string
	switch {
	case lim[2] == lim[3] && lim[2] != "unlimited":
		env["LIMIT_NPROC"] = lim[2]
		lines = "root hard nproc " + lim[2] + "\nroot  soft\tnproc " + lim[2] + "  # spacing varies\n"
	case lim[0] == lim[1] && lim[0] != "unlimited":
		env["LIMIT_NOFILE"] = lim[0]
		lines = "root hard nofile " + lim[0] + "\nroot soft nofile " + lim[0] + "\n"
	default:
		t.Logf("root's soft and hard limits differ on this host (%v): limits.effective cannot pass here", lim)
	}
	if lines != "" {
		env["LIMITS_FILE"] = writeFile(t, filepath.Join(dir, "limits.conf"), "# bainode\n"+lines, 0o644)
	}
	range_ := liveSysctl(t, "net.ipv4.ip_local_port_range")
	env["SYSCTL_FILE"] = writeFile(t, filepath.Join(dir, "sysctl.conf"),
		"# comment\n; also a comment\n\n"+
			"net.core.somaxconn="+liveSysctl(t, "net.core.somaxconn")+"\r\n"+
			"net.ipv4.ip_local_port_range =  "+strings.ReplaceAll(range_, " ", "\t ")+"\n"+
			"-net/ipv4/tcp_rmem = "+liveSysctl(t, "net.ipv4.tcp_rmem")+"\n"+
			"fs.file-max = 1\n", 0o644)
	env["HOSTS_ALIASES"] = "localhost"
	env["HOSTS_FILE"] = writeFile(t, filepath.Join(dir, "hosts"),
		"127.0.0.1 localhost\n##### BEGIN for Backend.AI services #####\n"+
			"127.0.0.1 localhost   # every host resolves it\n##### END for Backend.AI services #####\n", 0o644)
	vf := filepath.Join(dir, "vfroot")
	if err := os.MkdirAll(filepath.Join(vf, "local"), 0o755); err != nil {
		t.Fatal(err)
	}
	env["VFROOT"], env["VFROOT_DIRS"] = vf, "local"
	env["SHADOW_FILE"] = writeFile(t, filepath.Join(dir, "shadow"),
		"daemon:*:19000:0:99999:7:::\nroot:$6$saltsalt$Ue3XzJx2sYIwKL9aXc4qQ0:19000:0:99999:7:::\n", 0o640)
	env["DOCKER"], env["COMPOSE"], env["GPU"], env["IMAGES"] = "1", "1", "1", "ok/image:1 ok/image:1"
	env["GPU_COUNT"], env["PCI_DEVICES"] = "1", fakeGPUs(t, dir, 1)
	env["GPU_GATE"] = writeFile(t, filepath.Join(dir, "gate"), "#!/bin/bash\necho \"loaded $(uname -r) nvidia nvidia-uvm\"\n", 0o755)
	run := filepath.Join(dir, "run")
	writeFile(t, filepath.Join(run, "result.json"), resultOK, 0o644)
	writeFile(t, filepath.Join(run, "status.json"), statusOK, 0o644)
	lib := filepath.Join(dir, "lib")
	writeFile(t, filepath.Join(lib, "instance", "boot-finished"), "41.02 - Mon, 01 Jan 2024 00:00:41 +0000 - v. 24.4.1\n", 0o644)
	env["CLOUD_RUN_DIR"], env["CLOUD_LIB_DIR"] = run, lib
	path := fakeBin(t, map[string]string{
		"cloud-init": `[[ $1 == status ]] && { echo "status: done"; exit 0; }; exit 3`,
		"systemctl":  `[[ "$*" == "is-active docker" || "$*" == "is-active nvidia-persistenced" ]] && { echo active; exit 0; }; exit 3`,
		"docker": `case "$1 $2" in
"info --format") case "$3" in *ServerVersion*) echo 27.0.3 ;; *Runtimes*) echo "io.containerd.runc.v2 nvidia runc " ;; esac ;;
"compose version") echo "Docker Compose version v2.29.1" ;;
"image inspect") [[ $5 == ok/image:1 ]] || { echo "Error: No such image: $5" >&2; exit 1; }; echo sha256:0123456789abcdef0123456789 ;;
"run --rm") [[ "$*" == "run --rm --gpus all ok/image:1 nvidia-smi -L" ]] || exit 125; echo "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-0a1b)" ;;
*) exit 3 ;;
esac`,
		"sudo": `case "$*" in
"-n -l -U root") printf 'Matching Defaults entries for root on vm:\n    env_reset\n\nUser root may run the following commands on vm:\n    (ALL : ALL) ALL\n    (ALL) NOPASSWD: ALL\n' ;;
"-n true") exit 0 ;;
*) exit 3 ;;
esac`,
		"nvidia-smi": `echo "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-0a1b)"`,
		"id":         `[[ $1 == -nG ]] && { echo "root sudo docker"; exit 0; }; exec /usr/bin/id "$@"`,
	})
	return fixture{env: env, environ: []string{path}, bin: strings.SplitN(strings.TrimPrefix(path, "PATH="), ":", 2)[0]}
}

// The same checks pass on a host that meets the guide.
func TestScriptPassPaths(t *testing.T) {
	needHost(t, "su", "getent", "runuser")
	f := passFixture(t)
	r := runScript(t, f.env, f.environ)
	except := map[string]string{"python.version": StatusSkip, "python.modules": StatusSkip, "python.venvs": StatusSkip}
	if f.env["LIMITS_FILE"] == "" {
		for _, id := range []string{"limits.file", "limits.lines", "limits.effective.user", "limits.effective.root"} {
			except[id] = StatusSkip
		}
	}
	r.wantAll(t, StatusPass, except)
	if r.code != 0 {
		t.Errorf("exit: got %d, want 0", r.code)
	}
	if c := r.get(t, "sysctl.net.ipv4.tcp_rmem"); c.Status != StatusPass {
		t.Errorf("slash key: got %+v", c)
	}
	if got := r.get(t, "user.shadow").Actual; got != "hash $6$" {
		t.Errorf("user.shadow actual: got %q, want %q", got, "hash $6$")
	}
	if bytes.Contains(r.raw, []byte("saltsalt")) {
		t.Errorf("the password hash leaked into the report")
	}
}

// The same checks fail on a host that gets each of them wrong.
func TestScriptFailPaths(t *testing.T) {
	needHost(t, "su", "getent", "runuser")
	dir := t.TempDir()
	env := baseEnv()
	env["BAI_GID"] = "1100" // root's primary group is 0
	env["BAI_SHELL"] = "/bin/no-such-shell"
	env["LIMIT_NPROC"] = "12345"
	env["LIMITS_FILE"] = writeFile(t, filepath.Join(dir, "limits.conf"),
		"root hard nproc 12345\nroot soft nproc 12345\nroot - nproc 1\n", 0o666)
	somax := liveSysctl(t, "net.core.somaxconn")
	n, _ := strconv.Atoi(somax)
	env["SYSCTL_FILE"] = writeFile(t, filepath.Join(dir, "sysctl.conf"),
		"net.core.somaxconn = "+strconv.Itoa(n+1)+"\n"+
			"net.bainode.no_such_key = 1\n"+
			"this line has no equals sign\n"+
			`net.ipv4.ip_local_port_range="10000 65000"`+"\n"+
			"fs.file-max = 9223372036854775807\n"+
			"../../etc/shadow = x\n", 0o644)
	env["HOSTS_ALIASES"] = "localhost bai-nowhere-7f3a"
	env["HOSTS_FILE"] = writeFile(t, filepath.Join(dir, "hosts"),
		"##### BEGIN for Backend.AI services #####\n10.255.0.9 localhost\n##### END for Backend.AI services #####\n"+
			"##### BEGIN for Backend.AI services #####\n", 0o644)
	vf := filepath.Join(dir, "vfroot")
	if err := os.MkdirAll(filepath.Join(vf, "local"), 0o755); err != nil {
		t.Fatal(err)
	}
	env["VFROOT"], env["VFROOT_DIRS"] = vf, "local absent"
	env["SHADOW_FILE"] = writeFile(t, filepath.Join(dir, "shadow"), "root:hunter2:19000:0:99999:7:::\n", 0o640)
	env["DOCKER"], env["COMPOSE"], env["GPU"], env["IMAGES"] = "1", "1", "1", "missing/image:1"
	env["GPU_COUNT"], env["PCI_DEVICES"] = "2", fakeGPUs(t, dir, 2)
	env["GPU_GATE"] = writeFile(t, filepath.Join(dir, "gate"), "#!/bin/bash\necho \"failed $(uname -r) the NVIDIA module does not match its kernel\"\n", 0o755)
	pyhome := filepath.Join(dir, "python")
	writeFile(t, filepath.Join(pyhome, "bin", "python3"), `#!/bin/bash
[[ $1 == -V ]] && { echo "Python 3.10.12"; exit 0; }
echo "ModuleNotFoundError: No module named '_ssl'" >&2; exit 1
`, 0o755)
	env["PYTHON_VERSION"], env["PYTHON_HOME"], env["PYTHON_VENVS"] = "3.12.4", pyhome, "ghost"
	run := filepath.Join(dir, "run")
	writeFile(t, filepath.Join(run, "result.json"), `{
 "v1": {
  "datasource": null,
  "errors": [
   "('scripts_user', RuntimeError(\"Runparts: 1 failures ([\\'runcmd\\']) in 1 attempted commands\"))"
  ]
 }
}
`, 0o644)
	writeFile(t, filepath.Join(run, "status.json"), `{"v1": {"datasource": null, "stage": "modules-final"}}`, 0o644)
	env["CLOUD_RUN_DIR"], env["CLOUD_LIB_DIR"] = run, filepath.Join(dir, "lib")
	path := fakeBin(t, map[string]string{
		"cloud-init": `echo "status: running"`,
		"systemctl":  `echo inactive; exit 3`,
		"docker": `case "$1 $2" in
"info --format") case "$3" in *ServerVersion*) echo "permission denied while trying to connect to the Docker daemon socket" >&2; exit 1 ;; *) echo "io.containerd.runc.v2 runc" ;; esac ;;
"compose version") echo "docker: 'compose' is not a docker command." >&2; exit 1 ;;
"image inspect") echo "Error: No such image: $5" >&2; exit 1 ;;
*) exit 3 ;;
esac`,
		"sudo": `case "$*" in
"-n -l -U root") printf 'User root may run the following commands on vm:\n    (ALL : ALL) ALL\n' ;;
"-n true") echo "sudo: a password is required" >&2; exit 1 ;;
*) exit 3 ;;
esac`,
		"nvidia-smi": `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2; exit 9`,
		"id":         `[[ $1 == -nG ]] && { echo "root"; exit 0; }; exec /usr/bin/id "$@"`,
	})
	r := runScript(t, env, []string{path})
	r.wantAll(t, StatusFail, map[string]string{"env.file": StatusPass, "user.uid": StatusPass,
		"gpu.container": StatusSkip}) // no image to start: missing/image:1 is not there
	if r.code != 1 {
		t.Errorf("exit: got %d, want 1", r.code)
	}
	if bytes.Contains(r.raw, []byte("hunter2")) {
		t.Errorf("the plaintext password leaked into the report")
	}
	r.has(t, "actual", map[string]string{
		"limits.file":                  "mode 666",
		"limits.lines":                 "conflicting: root - nproc 1",
		"sysctl.file":                  "line 3 has no '='; line 6: bad key",
		"hosts.block":                  "BEGIN at line(s) 1 4",
		"hosts.alias.localhost":        "127.0.0.1",
		"hosts.alias.bai-nowhere-7f3a": "not in block",
		"cloudinit.status":             "running",
		"cloudinit.result":             "scripts_user",
		"cloudinit.datasource":         "null",
		"user.shadow":                  "plaintext",
		"user.sudo":                    "exit 1",
		"vfroot.dir.local":             "0:0",
		"vfroot.dir.absent":            "missing",
		"gpu.nvidia_runtime":           "runc",
		"gpu.module":                   "failed",
		"gpu.nvidia_smi":               "0 GPUs",
		"gpu.persistenced":             "inactive",
		"python.version":               "3.10.12",
		"python.venv.ghost":            "missing",
	})
	if got, want := r.get(t, "limits.lines").Actual, "conflicting: root - nproc 1"; got != want {
		t.Errorf("limits.lines actual: got %q, want %q", got, want)
	}
	if c := r.get(t, "python.modules"); !strings.Contains(c.Detail, "_ssl") {
		t.Errorf("python.modules detail: got %q, want the import error", c.Detail)
	}
	if c := r.get(t, "docker.user_access"); !strings.Contains(c.Detail, "permission denied") {
		t.Errorf("docker.user_access detail: got %q, want docker's error", c.Detail)
	}
}

// Inside cloud-final the status checks skip; the datasource is still known.
func TestScriptInCloudInit(t *testing.T) {
	needHost(t, "su", "getent", "runuser")
	f := passFixture(t)
	writeFile(t, filepath.Join(f.bin, "cloud-init"), "#!/bin/bash\necho 'status: running'\n", 0o755)
	os.Remove(filepath.Join(f.env["CLOUD_RUN_DIR"], "result.json"))
	os.Remove(filepath.Join(f.env["CLOUD_LIB_DIR"], "instance", "boot-finished"))
	r := runScript(t, f.env, f.environ, "--in-cloud-init")
	r.want(t, StatusSkip, "cloudinit.status", "cloudinit.result", "cloudinit.boot_finished")
	r.want(t, StatusPass, "cloudinit.datasource")
	if c := r.get(t, "cloudinit.status"); !strings.Contains(c.Detail, "--in-cloud-init") {
		t.Errorf("skip reason: got %q", c.Detail)
	}

	// Without the flag the same state fails: status running, no result.
	r = runScript(t, f.env, f.environ)
	r.want(t, StatusFail, "cloudinit.status", "cloudinit.result", "cloudinit.boot_finished")
}

// NFS entries: mountpoint, fstab entry, same filesystem type. /proc, /sys
// and /dev are mountpoints on any Linux host, so VFROOT=/ drives both ways
// without mounting anything.
func TestScriptNFS(t *testing.T) {
	needHost(t, "mountpoint", "stat")
	env := baseEnv()
	env["VFROOT"], env["VFROOT_NFS"] = "/", "proc sys dev no-such-dir-5c1e"
	env["FSTAB_FILE"] = writeFile(t, filepath.Join(t.TempDir(), "fstab"),
		"# <file system> <mount point> <type> <options> <dump> <pass>\n"+
			"proc /proc proc defaults 0 0\n"+
			"nas:/export/sys /sys nfs4 _netdev,nofail 0 0\n", 0o644)
	r := runScript(t, env, nil, "--no-cloud-init")
	r.want(t, StatusPass, "vfroot.root", "vfroot.nfs.proc", "vfroot.nfs.proc.owner", "vfroot.nfs.sys.owner")
	r.want(t, StatusFail, "vfroot.nfs.sys", "vfroot.nfs.dev", "vfroot.nfs.no-such-dir-5c1e", "vfroot.nfs.no-such-dir-5c1e.owner")
	r.has(t, "actual", map[string]string{
		"vfroot.nfs.sys":              "mounted sysfs",
		"vfroot.nfs.dev":              "not in fstab",
		"vfroot.nfs.no-such-dir-5c1e": "not mounted",
	})
	// The owner check fails for another uid.
	env["BAI_UID"] = "1100"
	r = runScript(t, env, nil, "--no-cloud-init")
	r.want(t, StatusFail, "vfroot.root", "vfroot.nfs.proc.owner")
}

// sudo with a password (BAI_SUDO_NOPASSWD=0) needs a usable hash; the
// shadow check accepts $6$, $y$ and locked fields only.
func TestScriptPasswords(t *testing.T) {
	needHost(t, "getent", "runuser")
	path := fakeBin(t, map[string]string{
		"sudo": `[[ "$*" == "-n -l -U root" ]] && printf 'User root may run the following commands on vm:\n    (ALL : ALL) ALL\n'`,
	})
	tests := []struct {
		field, shadow, sudo, kind string
	}{
		{"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7", StatusPass, StatusPass, "hash $y$"},
		{"$6$rounds=5000$salt$hash", StatusPass, StatusPass, "hash $6$"},
		{"!$6$salt$hash", StatusPass, StatusFail, "locked (! prefix)"},
		{"*", StatusPass, StatusFail, "locked (* prefix)"},
		{"", StatusFail, StatusFail, "empty"},
		{"$1$salt$md5hash", StatusFail, StatusFail, "hash $1$ (not $6$ or $y$)"},
		{"secure-password", StatusFail, StatusFail, "not a crypt hash"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			env := baseEnv()
			env["BAI_SUDO_NOPASSWD"] = "0"
			env["SHADOW_FILE"] = writeFile(t, filepath.Join(t.TempDir(), "shadow"), "root:"+tt.field+":19000:0:99999:7:::\n", 0o640)
			r := runScript(t, env, []string{path}, "--no-cloud-init")
			r.want(t, tt.shadow, "user.shadow")
			r.want(t, tt.sudo, "user.sudo")
			if got := r.get(t, "user.shadow").Actual; !strings.HasPrefix(got, tt.kind) {
				t.Errorf("user.shadow actual: got %q, want %q", got, tt.kind)
			}
			if len(tt.field) > 3 && bytes.Contains(r.raw, []byte(tt.field)) {
				t.Errorf("the password field leaked into the report")
			}
		})
	}
}

// The static Python and its venvs, with this host's python3 standing in
// for the static build.
func TestScriptPython(t *testing.T) {
	needHost(t, "python3")
	out, err := exec.Command("python3", "-c", "import sys; print(sys.base_prefix); print(sys.version.split()[0])").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	home, ver := f[0], f[1]
	py := filepath.Join(home, "bin", "python3")
	baiHome := t.TempDir()
	// --without-pip keeps this fast (ensurepip takes half a minute here).
	mk := func(svc string, args ...string) {
		dir := filepath.Join(baiHome, svc, ".venv")
		if out, err := exec.Command(py, append([]string{"-m", "venv", "--without-pip"}, append(args, dir)...)...).CombinedOutput(); err != nil {
			t.Fatalf("venv %s: %v\n%s", svc, err, out)
		}
	}
	mk("manager")
	mk("nopip")
	// A stand-in pip package, so the test does not depend on the host's pip.
	mpy := filepath.Join(baiHome, "manager", ".venv", "bin", "python")
	site, err := exec.Command(mpy, "-c", `import sysconfig; print(sysconfig.get_paths()["purelib"])`).Output()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(strings.TrimSpace(string(site)), "pip", "__init__.py"), "", 0o644)
	writeFile(t, filepath.Join(strings.TrimSpace(string(site)), "pip", "__main__.py"), "print('pip 24.0 from stand-in')\n", 0o644)
	writeFile(t, filepath.Join(baiHome, "manager", ".venv", "bin", "pip"), "#!/bin/sh\nexec \"$(dirname \"$0\")/python\" -m pip \"$@\"\n", 0o755)

	env := baseEnv()
	env["BAI_HOME"] = baiHome
	env["PYTHON_VERSION"], env["PYTHON_HOME"], env["PYTHON_VENVS"] = ver, home, "manager nopip ghost manager"
	r := runScript(t, env, nil, "--no-cloud-init")
	r.want(t, StatusPass, "python.version", "python.modules", "python.venv.manager")
	r.want(t, StatusFail, "python.venv.nopip", "python.venv.ghost")
	if c := r.get(t, "python.venv.nopip"); !strings.Contains(c.Detail, "no pip") {
		t.Errorf("nopip detail: got %q", c.Detail)
	}

	// Another expected version fails the interpreter and every venv; another
	// uid fails the venv's owner.
	env["PYTHON_VERSION"], env["BAI_UID"] = "3.0.1", "1100"
	r = runScript(t, env, nil, "--no-cloud-init")
	r.want(t, StatusFail, "python.version", "python.venv.manager")
	if c := r.get(t, "python.venv.manager"); !strings.Contains(c.Detail, "python "+ver) || !strings.Contains(c.Detail, "owned by 0:") {
		t.Errorf("manager detail: got %q, want the version and owner named", c.Detail)
	}
}

// The wrapper saves the JSON atomically and frames it for the console
// exactly as Frame does; Extract reads it back.
func TestWrapper(t *testing.T) {
	needHost(t, "base64", "sha256sum")
	_, report := readReport(t, "report.json")
	dir := t.TempDir()
	fake := writeFile(t, filepath.Join(dir, "fake-verify"), "cat "+shQuote(filepath.Join(mustAbs(t, "testdata"), "report.json"))+"\necho \"args: $*\" >&2\nexit 1\n", 0o755)
	out := filepath.Join(dir, "state", "verify.json")
	console := filepath.Join(dir, "console")
	cmd := exec.Command("bash", wrapperPath, "--in-cloud-init")
	cmd.Env = append(os.Environ(), "BAINODE_VERIFY_BIN="+fake, "BAINODE_VERIFY_OUT="+out, "BAINODE_VERIFY_CONSOLE="+console)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("wrapper: got %v, want exit 1; stderr:\n%s", err, stderr.String())
	}
	if got := stderr.String(); got != "args: --in-cloud-init\n" {
		t.Errorf("verifier args/stderr: got %q", got)
	}
	saved, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(saved, report) {
		t.Errorf("saved report differs from the verifier's output")
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("saved report mode: got %v (%v), want 0644", fi.Mode().Perm(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "state", ".verify.json.*")); len(left) > 0 {
		t.Errorf("temp files left behind: %v", left)
	}
	gotFrame, err := os.ReadFile(console)
	if err != nil {
		t.Fatal(err)
	}
	var wantFrame bytes.Buffer
	if err := Frame(&wantFrame, report); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotFrame, wantFrame.Bytes()) {
		t.Errorf("console frame: got\n%s\nwant (Frame)\n%s", gotFrame, wantFrame.Bytes())
	}
	if r, err := Extract(gotFrame); err != nil || r.Host != "bai-a01" {
		t.Errorf("Extract(console): got %v, %v", r.Host, err)
	}
	if got, want := stdout.String(), "bainode-verify: pass=7 fail=3 skip=1; report in "+out+"\n"; got != want {
		t.Errorf("stdout: got %q, want %q", got, want)
	}

	// A broken verifier still yields a (failing) report on the console.
	broken := writeFile(t, filepath.Join(dir, "broken"), "echo 'bainode-verify: must run as root' >&2\nexit 2\n", 0o755)
	cmd = exec.Command("bash", wrapperPath)
	cmd.Env = append(os.Environ(), "BAINODE_VERIFY_BIN="+broken, "BAINODE_VERIFY_OUT="+out, "BAINODE_VERIFY_CONSOLE="+console)
	if err := cmd.Run(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("broken verifier: got %v, want exit 1", err)
	}
	b, _ := os.ReadFile(console)
	r, err := Extract(b)
	if err != nil {
		t.Fatalf("Extract after a broken verifier: %v", err)
	}
	if len(r.Checks) != 1 || r.Checks[0].ID != "verify.run" || r.Checks[0].Status != StatusFail || r.Checks[0].Actual != "exit 2" {
		t.Errorf("fallback report: got %+v", r.Checks)
	}
}

// The wrapper with the real verifier next to it, as installed on nodes.
func TestWrapperRealVerifier(t *testing.T) {
	needHost(t, "base64", "sha256sum", "su", "getent")
	dir := t.TempDir()
	out := filepath.Join(dir, "verify.json")
	console := filepath.Join(dir, "console")
	cmd := exec.Command("bash", wrapperPath, "--env", writeEnv(t, baseEnv()), "--no-cloud-init")
	cmd.Env = append(os.Environ(), "BAINODE_VERIFY_OUT="+out, "BAINODE_VERIFY_CONSOLE="+console)
	if out, err := cmd.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("wrapper: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile(console)
	if err != nil {
		t.Fatal(err)
	}
	fromConsole, err := Extract(b)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	saved, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := Parse(bytes.NewReader(saved))
	if err != nil {
		t.Fatal(err)
	}
	if len(fromConsole.Checks) != len(fromFile.Checks) || fromConsole.Summary != fromFile.Summary {
		t.Errorf("console report %+v differs from saved report %+v", fromConsole.Summary, fromFile.Summary)
	}
	if fromFile.Checks[0].ID != "env.file" || fromFile.Checks[0].Status != StatusPass {
		t.Errorf("first check: got %+v, want env.file pass", fromFile.Checks[0])
	}
}

func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck not installed (apt-get install shellcheck)")
		}
		t.Skip("shellcheck not installed")
	}
	out, err := exec.Command("shellcheck", "--shell=bash", "--severity=style", scriptPath, wrapperPath).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Name resolution as the node would see it, with a stand-in getent for the
// hosts database (passwd and group go to the real one).
func TestScriptHostsResolution(t *testing.T) {
	needHost(t, "getent")
	env := baseEnv()
	env["HOSTS_ALIASES"] = "bai-m1 bai-a01 bai-a02 bai-a03 bai-x"
	env["HOSTS_FILE"] = writeFile(t, filepath.Join(t.TempDir(), "hosts"), `127.0.0.1 localhost
127.0.1.1 bai-a01
##### BEGIN for Backend.AI services #####
10.20.30.10 bai-m1   # management node 01
10.20.30.20 bai-a01  # agent node 01 (GPU 01)
10.20.30.22 bai-a02  # agent node 02 (GPU 02)
10.20.30.23 bai-a03
##### END for Backend.AI services #####
10.20.30.99 bai-x
`, 0o644)
	path := fakeBin(t, map[string]string{"getent": `[[ $1 == ahosts ]] || exec /usr/bin/getent "$@"
case $2 in
bai-m1) printf '10.20.30.10     STREAM bai-m1\n10.20.30.10     DGRAM  \n10.20.30.10     RAW    \n' ;;
bai-a01) printf '127.0.1.1       STREAM bai-a01\n127.0.1.1       DGRAM  \n10.20.30.20     STREAM \n' ;;
bai-a02) exit 2 ;;
bai-a03) printf '192.0.2.7       STREAM bai-a03\n' ;;
bai-x) printf '10.20.30.99     STREAM bai-x\n' ;;
esac`})
	r := runScript(t, env, []string{path}, "--no-cloud-init")
	r.want(t, StatusPass, "hosts.block", "hosts.alias.bai-m1")
	r.want(t, StatusFail, "hosts.alias.bai-a01", "hosts.alias.bai-a02", "hosts.alias.bai-a03", "hosts.alias.bai-x")
	r.has(t, "detail", map[string]string{
		"hosts.alias.bai-a01": "resolves first to 127.0.1.1",
		"hosts.alias.bai-a02": "exit 2",
		"hosts.alias.bai-a03": "resolves elsewhere",
		"hosts.alias.bai-x":   "add it between the BEGIN and END lines",
	})
	if got, want := r.get(t, "hosts.alias.bai-a01").Actual, "127.0.1.1 10.20.30.20"; got != want {
		t.Errorf("bai-a01 actual: got %q, want %q", got, want)
	}
}

// "degraded done" is a failed node for CI tools: noble's cloud-init exits
// 2; focal's and jammy's exit 0 but still say degraded.
func TestScriptCloudInitDegraded(t *testing.T) {
	needHost(t, "su", "getent", "runuser")
	for _, tc := range []struct{ name, body, actual string }{
		{"noble", "printf 'status: done\\nextended_status: degraded done\\n'; exit 2", "done (degraded done), exit 2"},
		{"focal", "printf 'status: done\\nextended_status: degraded done\\n'; exit 0", "done (degraded done), exit 0"},
		{"exit only", "echo 'status: done'; exit 2", "done, exit 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := passFixture(t)
			writeFile(t, filepath.Join(f.bin, "cloud-init"), "#!/bin/bash\n"+tc.body+"\n", 0o755)
			r := runScript(t, f.env, f.environ)
			r.want(t, StatusFail, "cloudinit.status")
			if c := r.get(t, "cloudinit.status"); c.Actual != tc.actual {
				t.Errorf("actual: got %q, want %q", c.Actual, tc.actual)
			}
		})
	}
	f := passFixture(t)
	writeFile(t, filepath.Join(f.bin, "cloud-init"), "#!/bin/bash\nprintf 'status: done\\nextended_status: done\\n'\n", 0o755)
	runScript(t, f.env, f.environ).want(t, StatusPass, "cloudinit.status")
}

// fakeGPUs is a PCI devices directory with n NVIDIA 3D controllers and a
// network card, as /sys/bus/pci/devices shows them.
func fakeGPUs(t *testing.T, dir string, n int) string {
	t.Helper()
	pci := filepath.Join(dir, "pci")
	for i := 0; i < n; i++ {
		d := filepath.Join(pci, fmt.Sprintf("0000:%02x:00.0", i+1))
		writeFile(t, filepath.Join(d, "vendor"), "0x10de\n", 0o644)
		writeFile(t, filepath.Join(d, "class"), "0x030200\n", 0o644)
	}
	d := filepath.Join(pci, "0000:00:03.0")
	writeFile(t, filepath.Join(d, "vendor"), "0x8086\n", 0o644)
	writeFile(t, filepath.Join(d, "class"), "0x020000\n", 0o644)
	return pci
}

// GPU=1 on a machine without an NVIDIA GPU (a VM): the device checks skip
// and say why; with a reboot pending they skip until that boot; a count
// the node does not have fails.
func TestScriptGPUSkipsAndCount(t *testing.T) {
	needHost(t, "su", "getent", "runuser")
	f := passFixture(t)
	dir := t.TempDir()
	f.env["PCI_DEVICES"] = fakeGPUs(t, dir, 0)
	f.env["GPU_GATE"] = filepath.Join(dir, "no-gate")
	r := runScript(t, f.env, f.environ)
	r.want(t, StatusSkip, "gpu.module", "gpu.nvidia_smi", "gpu.persistenced", "gpu.container")
	r.want(t, StatusPass, "gpu.nvidia_runtime")
	if c := r.get(t, "gpu.nvidia_smi"); !strings.Contains(c.Detail, "no NVIDIA GPU on the PCI bus") {
		t.Errorf("skip reason: got %q", c.Detail)
	}

	f.env["GPU_GATE"] = writeFile(t, filepath.Join(dir, "gate"), "#!/bin/bash\necho 'reboot 6.1.0-1-amd64 nvidia is built for kernel 6.1.0-2-amd64'\n", 0o755)
	f.env["PCI_DEVICES"] = fakeGPUs(t, dir, 1)
	r = runScript(t, f.env, f.environ)
	r.want(t, StatusSkip, "gpu.module", "gpu.nvidia_smi", "gpu.persistenced", "gpu.container")
	if c := r.get(t, "gpu.module"); !strings.Contains(c.Detail, "rebooting to load the NVIDIA driver") {
		t.Errorf("skip reason: got %q", c.Detail)
	}

	f.env["GPU_GATE"] = writeFile(t, filepath.Join(dir, "gate"), "#!/bin/bash\necho \"loaded $(uname -r) nvidia\"\n", 0o755)
	f.env["GPU_COUNT"] = "8"
	r = runScript(t, f.env, f.environ)
	r.want(t, StatusPass, "gpu.module", "gpu.persistenced")
	r.want(t, StatusFail, "gpu.nvidia_smi", "gpu.container")
	if c := r.get(t, "gpu.nvidia_smi"); c.Expected != "8 GPUs" || c.Actual != "1 GPUs" {
		t.Errorf("gpu.nvidia_smi: got %+v", c)
	}
}

// The verifier a node receives has the sections its verify.env turns off
// cut out (render.Script). It must report the same checks, with the same
// statuses, as the whole script: every id the node's plan expects is there.
func TestScriptAsRendered(t *testing.T) {
	needHost(t)
	gpu := guideEnv()
	gpu["GPU"] = "1"
	for name, env := range map[string]map[string]string{"all off": baseEnv(), "guide": guideEnv(), "gpu": gpu} {
		b, err := render.Script("verify/bainode-verify", env)
		if err != nil {
			t.Fatal(err)
		}
		cut := writeFile(t, filepath.Join(t.TempDir(), "bainode-verify"), string(b), 0o755)
		environ := []string{"CLOUD_RUN_DIR=" + t.TempDir()}
		full, got := runScript(t, env, environ, "--no-cloud-init"), runScriptAt(t, cut, env, environ, "--no-cloud-init")
		ids := func(r result) []string {
			var out []string
			for _, c := range r.rep.Checks {
				out = append(out, c.ID+"="+string(c.Status))
			}
			return out
		}
		if f, g := ids(full), ids(got); strings.Join(f, " ") != strings.Join(g, " ") {
			t.Errorf("%s: the rendered verifier reports\n  %v\nthe whole one\n  %v", name, g, f)
		}
		if name == "all off" {
			whole, _ := os.ReadFile(scriptPath)
			if len(b) >= len(whole)*3/4 {
				t.Errorf("all off: the rendered verifier is %d bytes of %d; sections are not cut", len(b), len(whole))
			}
		}
	}
}

// canRaise says pam_limits could raise this process's hard nofile and nproc
// limits to these values: it has CAP_SYS_RESOURCE, or they are high enough.
func canRaise(t *testing.T, nofile, nproc uint64) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			if caps&(1<<24) != 0 {
				return true
			}
		}
	}
	var n, p syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Getrlimit(6 /* RLIMIT_NPROC */, &p); err != nil {
		t.Fatal(err)
	}
	return n.Max >= nofile && p.Max >= nproc
}
