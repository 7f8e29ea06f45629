package qemu_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/smoke"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/templates"
	"github.com/lablup/bainode/testing/qemu"
)

// vmTestFiles renders the built-in vm-test example's only node.
func vmTestFiles(t *testing.T) render.Files {
	t.Helper()
	b, err := templates.FS.ReadFile("examples/vm-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse("vm-test.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Node(s, &s.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// boot runs a two-boot smoke of files on the test base and returns the
// reports; the serial logs go to the test's output on failure.
func boot(t *testing.T, f render.Files) []verify.Report {
	t.Helper()
	img := qemu.Need(t)
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "seed.iso")
	if err := seed.WriteISO(p, f.FS()); err != nil {
		t.Fatal(err)
	}
	o := qemu.Smoke(t, img, "", accel)
	o.Seed, o.SeedFormat, o.Boots = p, "iso", 2
	o.Timeout, o.MemoryMiB, o.CPUs = accel.Timeout(4*time.Minute), 1536, 2
	o.LogDir = filepath.Join(dir, "logs")
	res, err := smoke.Run(t.Context(), o)
	if err != nil || t.Failed() {
		for _, l := range res.Logs {
			b, _ := os.ReadFile(l)
			t.Logf("serial log %s (last 6000 bytes):\n%s", l, tail(b, 6000))
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range res.Elapsed {
		t.Logf("boot %d: report after %s (%s)", i+1, e.Round(time.Second), accel)
	}
	return res.Reports
}

// The vm-test seed gives a node that meets the guide, and still does after a
// reboot: every check that applies passes on both boots.
func TestSmokeVMTest(t *testing.T) {
	t.Parallel()
	reps := boot(t, vmTestFiles(t))
	for i, r := range reps {
		for _, c := range r.Checks {
			if c.Status == verify.StatusFail {
				t.Errorf("boot %d: %s failed: expected %q, got %q (%s)", i+1, c.ID, c.Expected, c.Actual, c.Detail)
			}
		}
		// The parts vm-test turns on must have been checked, not skipped.
		for _, id := range []string{"cloudinit.status", "user.uid", "user.gid", "user.member.sudo", "limits.lines", "limits.effective.user",
			"sysctl.net.ipv4.ip_local_port_range", "hosts.block", "hosts.alias.bai-m1", "vfroot.root", "vfroot.dir.local"} {
			if st := status(r, id); st != verify.StatusPass {
				t.Errorf("boot %d: %s is %q, want pass", i+1, id, st)
			}
		}
	}
}

// A verifier that cannot fail is worthless: a seed broken in four ways the
// guide warns about must fail exactly there.
func TestSmokeBrokenSeed(t *testing.T) {
	t.Parallel()
	f := vmTestFiles(t)
	ud := string(f.UserData)
	for _, c := range []struct{ old, new string }{
		// The guide's quoted port range, which sysctl rejects.
		{"net.ipv4.ip_local_port_range = 10000 65000", `net.ipv4.ip_local_port_range = \"10000 65000\"`},
		// A conflicting limits line after the guide's: it wins.
		// (file lines are escaped line breaks in a double-quoted scalar)
		{"      bai soft nofile 512000\\n\\\n", "      bai soft nofile 512000\\n\\\n      bai soft nofile 1024\\n\\\n"},
		// cloud-init re-renders /etc/hosts on every boot.
		{"manage_etc_hosts: false", "manage_etc_hosts: true"},
		// /vfroot left to root.
		{"  - [/usr/local/sbin/bainode-provision]\n", "  - [/usr/local/sbin/bainode-provision]\n  - [chown, \"0:0\", /vfroot]\n"},
	} {
		if !strings.Contains(ud, c.old) {
			t.Fatalf("user-data has no %q to break", c.old)
		}
		ud = strings.Replace(ud, c.old, c.new, 1)
	}
	f.UserData = []byte(ud)
	reps := boot(t, f)
	want := map[string][]string{
		// boot 1: the sysctl value, the effective limit, /vfroot's owner.
		"boot 1": {"sysctl.net.ipv4.ip_local_port_range", "limits.effective.user", "vfroot.root"},
		// boot 2: the same, and the hosts block that cloud-init wiped.
		"boot 2": {"sysctl.net.ipv4.ip_local_port_range", "limits.effective.user", "vfroot.root", "hosts.block"},
	}
	for i, r := range reps {
		for _, id := range want[fmt.Sprintf("boot %d", i+1)] {
			if st := status(r, id); st != verify.StatusFail {
				t.Errorf("boot %d: %s is %q, want fail", i+1, id, st)
			}
		}
		// The parts that were not broken still pass.
		for _, id := range []string{"user.uid", "user.gid", "limits.file"} {
			if st := status(r, id); st != verify.StatusPass {
				t.Errorf("boot %d: %s is %q, want pass", i+1, id, st)
			}
		}
	}
	if len(reps) == 2 && status(reps[0], "hosts.block") != verify.StatusPass {
		t.Errorf("boot 1: hosts.block is %q; it must pass until cloud-init rewrites /etc/hosts at the next boot", status(reps[0], "hosts.block"))
	}
}

func status(r verify.Report, id string) string {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return "missing"
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
