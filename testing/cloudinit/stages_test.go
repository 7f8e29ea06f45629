package cloudinit_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/testing/cloudinit"
)

// stageSeeds are the seeds each target's stages run: the offline vm-test
// node and a GPU agent (whose provisioning needs the network).
var stageSeeds = map[string]bool{"vm-test/bai-vm": true, "cluster/bai-a01": false}

// Each cloud-init a target ships runs the four boot stages on the target's
// seeds in a sandbox (private namespaces, overlay of the host root, tmpfs
// /dev with no disks, writable copy of /proc/sys). Not checked here, left to
// the VM boots (testing/qemu): limits (pam_limits cannot raise hard limits
// without CAP_SYS_RESOURCE; the verifier skips that check here), systemd
// units (no systemd as PID 1), network config (no renderer on the host, no
// NIC), sysctl values and anything that needs the network.
func TestStagesMatrix(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the stages sandbox needs root (unshare, mount)")
		}
		t.Skip("the stages sandbox needs root (unshare, mount)")
	}
	// The sandbox is the host's root: the verifier run by runcmd needs sudo
	// there as on any cloud image (Debian package sudo, in APT_PACKAGES).
	if _, err := os.Stat("/usr/bin/sudo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the stages sandbox needs /usr/bin/sudo (Debian package sudo)")
		}
		t.Skip("the stages sandbox needs /usr/bin/sudo (Debian package sudo)")
	}
	trees := cloudinit.Trees(t)
	byTarget := targetTrees(t, trees)
	// A run is a few seconds of one core; the GPU seed's runs mostly wait
	// out its downloads' retries (the sandbox has no network): two per core.
	sem := make(chan struct{}, 2*max(1, runtime.NumCPU()))
	for _, n := range renderAll(t) {
		offline, ok := stageSeeds[strings.SplitN(n.name, "/", 2)[1]]
		if !ok {
			continue
		}
		for _, tr := range byTarget[n.target] {
			t.Run(n.name+"@"+tr.Name, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				checkStages(t, tr, n, offline)
			})
		}
	}
}

type cloudConfig struct {
	WriteFiles []struct {
		Path        string `yaml:"path"`
		Owner       string `yaml:"owner"`
		Permissions string `yaml:"permissions"`
		Defer       bool   `yaml:"defer"`
	} `yaml:"write_files"`
}

func checkStages(t *testing.T, tr *cloudinit.Tree, n rendered, offline bool) {
	var cc cloudConfig
	if err := yaml.Unmarshal(n.files.UserData, &cc); err != nil {
		t.Fatalf("user-data: %v", err)
	}
	op := n.node.Settings.Operator
	home := "/home/" + op.Name
	paths := []string{home, home + "/.bashrc", home + "/.profile"}
	for _, f := range cc.WriteFiles {
		paths = append(paths, f.Path)
	}
	r, err := tr.Stages(t.Context(), t.TempDir(), n.dir, paths)
	if err != nil {
		t.Fatal(err)
	}
	logs := func() string {
		if d := os.Getenv("BAINODE_STAGES_LOGS"); d != "" {
			os.WriteFile(d+"/"+strings.ReplaceAll(t.Name(), "/", "_")+".log", []byte(r.Log+"\n---\n"+r.Status+"\n---\n"+r.File("var/log/cloud-init.log")), 0o644)
		}
		return fmt.Sprintf("--- stages\n%s\n--- status\n%s\n--- cloud-init-output.log\n%s\n--- warnings in cloud-init.log\n%s\n--- verify-provision.json\n%s",
			r.Log, r.Status, r.File("var/log/cloud-init-output.log"), grepLines(r.File("var/log/cloud-init.log"), "WARNING|ERROR|Traceback"), r.File("var/lib/bainode/verify-provision.json"))
	}

	// The user: uid, gid, shell, home, groups and skel.
	pw := field(r.File("etc/passwd"), op.Name)
	if len(pw) < 7 {
		t.Fatalf("no %s in /etc/passwd\n%s", op.Name, logs())
	}
	want := []string{strconv.Itoa(op.UID), strconv.Itoa(op.GID), home, op.Shell}
	if got := []string{pw[2], pw[3], pw[5], pw[6]}; !slices.Equal(got, want) {
		t.Errorf("passwd: uid, gid, home, shell = %v; want %v", got, want)
	}
	for _, g := range op.Groups {
		gr := field(r.File("etc/group"), g)
		if len(gr) < 4 {
			t.Errorf("group %s missing", g)
			continue
		}
		if g != op.Name && !slices.Contains(strings.Split(gr[3], ","), op.Name) {
			t.Errorf("%s is not in group %s: %v", op.Name, g, gr)
		}
	}
	if gr := field(r.File("etc/group"), op.Name); len(gr) < 3 || gr[2] != strconv.Itoa(op.GID) {
		t.Errorf("group %s: %v; want gid %d", op.Name, gr, op.GID)
	}
	if s := r.Stat[home]; s.Missing || s.UID != op.UID || s.GID != op.GID {
		t.Errorf("%s: %+v; want owned by %d:%d", home, s, op.UID, op.GID)
	}
	for _, p := range []string{home + "/.bashrc", home + "/.profile"} {
		if _, err := os.Stat("/etc/skel/" + p[len(home)+1:]); err != nil {
			continue // not in this host's skel
		}
		if s := r.Stat[p]; s.Missing || s.UID != op.UID {
			t.Errorf("%s (from /etc/skel): %+v; want owned by %d", p, s, op.UID)
		}
	}

	// Every write_files path, with its owner and mode.
	for _, f := range cc.WriteFiles {
		s := r.Stat[f.Path]
		mode := strings.TrimLeft(f.Permissions, "0")
		if mode == "" {
			mode = "644"
		}
		if s.Missing || s.UID != 0 || s.GID != 0 || s.Mode != mode {
			t.Errorf("%s: %+v; want root:root mode %s", f.Path, s, mode)
		}
	}

	// runcmd ran: the provisioning script logs its first step.
	out := r.File("var/log/cloud-init-output.log")
	if !strings.Contains(out, "bainode-provision[") {
		t.Errorf("runcmd did not run bainode-provision\n%s", logs())
	}

	if offline {
		// Done, not degraded, and exit 0: what CI tools read.
		if !regexp.MustCompile(`(?m)^status: done$`).MatchString(r.Status) || strings.Contains(r.Status, "degraded") || r.StatusExit != 0 {
			t.Errorf("cloud-init %s status: exit %d\n%s", tr.Package, r.StatusExit, logs())
		}
		return
	}
	// The GPU agent needs the network to install its packages; the sandbox
	// has none. The only error allowed is the provisioning step that failed
	// for lack of it, and nothing may degrade the status.
	if strings.Contains(r.Status, "degraded") {
		t.Errorf("cloud-init %s status is degraded\n%s", tr.Package, logs())
	}
	if r.StatusExit != 0 && !strings.Contains(r.Status, "scripts_user") && !strings.Contains(r.Status, "scripts-user") {
		t.Errorf("cloud-init %s status: exit %d, not only the runcmd failing\n%s", tr.Package, r.StatusExit, logs())
	}
	// The verifier still ran, and what needs no network holds.
	var rep struct {
		Checks []struct{ ID, Status, Actual string }
	}
	if err := json.Unmarshal([]byte(r.File("var/lib/bainode/verify-provision.json")), &rep); err != nil {
		t.Fatalf("verify-provision.json: %v\n%s", err, logs())
	}
	need := map[string]bool{"user.uid": true, "user.gid": true, "user.primary_group": true, "user.home": true,
		"user.shell": true, "user.member.sudo": true, "user.sudo": true, "limits.file": true, "limits.lines": true,
		"sysctl.file": true, "hosts.block": true}
	for _, c := range rep.Checks {
		if need[c.ID] {
			delete(need, c.ID)
			if c.Status != "pass" {
				t.Errorf("verifier: %s is %s (%s)", c.ID, c.Status, c.Actual)
			}
		}
	}
	for id := range need {
		t.Errorf("verifier: no %s check\n%s", id, logs())
	}
}

// field is the colon-separated fields of NAME's line in a passwd/group file.
func field(file, name string) []string {
	for _, l := range strings.Split(file, "\n") {
		if strings.HasPrefix(l, name+":") {
			return strings.Split(l, ":")
		}
	}
	return nil
}

func grepLines(s, re string) string {
	rx := regexp.MustCompile(re)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if rx.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
