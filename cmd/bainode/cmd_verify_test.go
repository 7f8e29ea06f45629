package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCloudInitRan(t *testing.T) {
	run, lib := t.TempDir(), t.TempDir()
	if ran, looked := cloudInitRan(run, lib); ran || len(looked) != 4 {
		t.Errorf("empty dirs: ran %v, looked %v", ran, looked)
	}
	// ds-identify's leavings are not a run.
	os.WriteFile(filepath.Join(run, "cloud-id"), []byte("nocloud\n"), 0o644)
	if ran, _ := cloudInitRan(run, lib); ran {
		t.Error("cloud-id alone counted as a run")
	}
	os.WriteFile(filepath.Join(lib, "result.json"), []byte("{}"), 0o644)
	if ran, _ := cloudInitRan(run, lib); !ran {
		t.Error("result.json not counted as a run")
	}
}

func TestVerifyFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"verify", "--example", "cluster"}, 2, "choose it with --node (one of bai-m1, bai-a01, bai-a02)"},
		{[]string{"verify", "--example", "vm-test", "--env", "x.env"}, 2, "--env and --config/--example exclude each other"},
		{[]string{"verify", "--example", "cluster", "--node", "ghost"}, 2, `--node "ghost"`},
		{[]string{"verify", "--node", "bai-a01"}, 2, "--node picks from a site"},
		{[]string{"verify", "--env", filepath.Join(t.TempDir(), "none.env")}, 1, "cannot read the expectations file"},
		{[]string{"verify", "--from", "../../builder/verify/testdata/report.json", "--format", "lines"}, 1, "FAIL cloudinit.result  (expected"},
		{[]string{"verify", "--from", "../../builder/verify/testdata/report.json", "--format", "xml"}, 2, `no report format "xml"`},
		{[]string{"verify", "--from", "../../builder/verify/testdata/report.json", "--json", "--format", "lines"}, 2, "exclude each other"},
	} {
		out, errs, code := bainode(t, "", tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.out) {
			t.Errorf("bainode %s: exit %d, want %d; want output with %q, got:\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.out, out, errs)
		}
	}
	if _, err := os.Stat(defaultVerifyEnv); os.IsNotExist(err) {
		_, errs, code := bainode(t, "", "verify")
		if code != 1 || !strings.Contains(errs, "--config site.yaml --node NAME") {
			t.Errorf("verify without %s: exit %d, %s", defaultVerifyEnv, code, errs)
		}
	}
}

// On this host, which bainode did not provision, verify --example takes the
// example node's expectations from its plan: the real verifier runs and
// reports that the host falls short of them.
func TestVerifyFromSite(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test needs root")
		}
		t.Skip("needs root")
	}
	out, errs, code := bainode(t, "", "verify", "--example", "cluster", "--node", "bai-a01", "--json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (checks fail on this host)\n%s", code, errs)
	}
	var rep struct {
		Checks []struct{ ID, Status, Expected string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	for _, c := range rep.Checks {
		got[c.ID] = c.Status + " " + c.Expected
	}
	// From the plan of bai-a01: user bai 1100, Docker, an NFS mount, hosts aliases.
	for id, want := range map[string]string{"env.file": "pass", "user.uid": "fail 1100", "vfroot.nfs.data1": "fail", "hosts.alias.bai-m1": "fail"} {
		if !strings.HasPrefix(got[id], want) {
			t.Errorf("%s: %q, want %q…", id, got[id], want)
		}
	}
	ran, _ := cloudInitRan(cloudInitRoots...)
	if note := strings.Contains(errs, "cloud-init never ran on this host"); note == ran {
		t.Errorf("cloud-init ran %v, but the note is there: %v\n%s", ran, note, errs)
	}
	if !ran && !strings.HasPrefix(got["cloudinit.status"], "skip") {
		t.Errorf("cloud-init never ran, but cloudinit.status is %q", got["cloudinit.status"])
	}
}
