package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/internal/testenv"
)

// With seed.verifier: false the node has no bainode-verify: provisioning's
// report and verify steps must pass and say why, not fail on the missing
// file. With it on, the same run fails on the missing verifier, which
// shows the steps really ran.
func TestProvisionWithoutVerifier(t *testing.T) {
	bash := testenv.Need(t, "bash")
	env := map[string]string{"ARTIFACTS": "online", "DOCKER": "0", "GPU": "0", "PYTHON": "0"}
	b, err := Script("provision/bainode-provision", env)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "bainode-provision")
	if err := os.WriteFile(script, b, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(verifier string) (string, error) {
		envFile := filepath.Join(dir, "provision.env")
		body := "TARGET=debian-12\nROLE=agent\nARTIFACTS=online\nVERIFIER=" + verifier + "\n"
		if err := os.WriteFile(envFile, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bash, script)
		cmd.Env = append(os.Environ(), "BAINODE_ENV="+envFile, "BAINODE_STEPS=verify")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if _, err := os.Stat("/usr/local/lib/bainode/bainode-verify"); err == nil {
		t.Skip("this host has a bainode verifier installed; the run with it on would use it")
	}
	out, err := run("0")
	if err != nil || !strings.Contains(out, "no verifier on this node (seed.verifier: false)") {
		t.Errorf("VERIFIER=0: %v\n%s", err, out)
	}
	out, err = run("1")
	if err == nil || !strings.Contains(out, "FAILED steps: verify") {
		t.Errorf("VERIFIER=1 without a verifier: want the verify step to fail, got %v\n%s", err, out)
	}
}
