//go:build linux

package payload

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/overlays"
)

// The provisioning script spells the payload's label and the file an
// installer leaves it in; they must be this package's.
func TestProvisionScriptPayloadNames(t *testing.T) {
	script, err := fs.ReadFile(overlays.FS, "provision/bainode-provision")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nPAYLOAD_LABEL=" + Label + "\n", "\nPAYLOAD_FILE=${BAINODE_PAYLOAD_FILE:-" + InstalledFile + "}\n"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("bainode-provision lacks %q", strings.TrimSpace(want))
		}
	}
}

// TestProvisionLoopPayload runs the real provisioning script's payload and
// unmount steps on this host, in a private mount namespace, with no disk
// labelled BAIPAYLOAD but a payload image where an installer leaves it
// (bainode iso --payload): the script must loop-mount it read-only, check
// its manifest, and unmount it. Root only (mount, losetup).
func TestProvisionLoopPayload(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test mounts a loop device and needs root")
		}
		t.Skip("needs root (mount -o loop)")
	}
	if out, err := exec.Command("blkid", "-c", "/dev/null", "-L", Label).Output(); err == nil {
		t.Fatalf("this host has a disk labelled %s (%s): the test would mount it", Label, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "payload.img")
	if err := Build(t.Context(), img, nil, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	script, _ := fs.ReadFile(overlays.FS, "provision/bainode-provision")
	sp := filepath.Join(dir, "bainode-provision")
	env := filepath.Join(dir, "provision.env")
	os.WriteFile(sp, script, 0o755)
	os.WriteFile(env, []byte(fmt.Sprintf("ROLE=all-in-one\nTARGET=debian-12\nARTIFACTS=payload\nPAYLOAD_FORMAT=%d\n", ManifestFormat)), 0o644)
	if err := os.MkdirAll("/run/bainode", 0o755); err != nil {
		t.Fatal(err)
	}
	// A private tmpfs over /run/bainode: the mount and its marker files
	// stay in the namespace.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs bainode-test /run/bainode && "$0" && ! grep -q " /run/bainode/payload " /proc/self/mounts`, sp)
	cmd.Env = append(os.Environ(), "BAINODE_ENV="+env, "BAINODE_PAYLOAD_FILE="+img, "BAINODE_STEPS=sysctl")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("provisioning: %v", err)
	}
	for _, want := range []string{
		"bainode-provision[payload]: mounted " + img + " (" + Label + ") read-only",
		"bainode-provision[payload]: all 0 files match manifest.json",
		"bainode-provision[unmount]: unmounted /run/bainode/payload",
		"bainode-provision[done]: finished",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// Without the file the step fails and says where it looked.
	cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs bainode-test /run/bainode && "$0"`, sp)
	cmd.Env = append(os.Environ(), "BAINODE_ENV="+env, "BAINODE_PAYLOAD_FILE="+filepath.Join(dir, "absent.img"), "BAINODE_STEPS=sysctl")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "and there is no "+filepath.Join(dir, "absent.img")) {
		t.Errorf("no payload anywhere: err %v\n%s", err, out)
	}
}

func TestCheckImage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "payload.img")
	if err := Build(t.Context(), img, nil, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := CheckImage(img); err != nil {
		t.Errorf("a payload image: %v", err)
	}
	other := filepath.Join(dir, "other.img")
	run(t, "truncate", "-s", "8M", other)
	run(t, "mkfs.ext4", "-q", "-L", "OTHER", other)
	for _, p := range []string{other, filepath.Join(dir, "absent.img"), "/dev/null"} {
		if err := CheckImage(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming it", p, err)
		}
	}
}
