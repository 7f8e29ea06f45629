package deploy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/cpio"
)

func TestCPIORoundTrip(t *testing.T) {
	a := cpio.NewArchive()
	a.File("b/c.txt", 0o644, []byte("hello"))
	a.Symlink("a/link", "../b/c.txt")
	a.Add(cpio.Entry{Name: "dev/console", Mode: cpio.ModeChar | 0o600, DevMajor: 5, DevMinor: 1})
	var one, two bytes.Buffer
	a.WriteTo(&one)
	a.WriteTo(&two)
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Fatal("two writes of one archive differ")
	}
	var names []string
	err := cpio.ReadArchive(&one, func(e cpio.Entry) error {
		names = append(names, e.Name)
		if e.Name == "b/c.txt" && (string(e.Data) != "hello" || e.Mode != cpio.ModeFile|0o644) {
			t.Errorf("b/c.txt: %q mode %o", e.Data, e.Mode)
		}
		if e.Name == "dev/console" && (e.DevMajor != 5 || e.DevMinor != 1) {
			t.Errorf("dev/console: %d,%d", e.DevMajor, e.DevMinor)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "a/link", "b", "b/c.txt", "dev", "dev/console"}
	if !slices.Equal(names, want) {
		t.Errorf("members %v, want %v (sorted, parents added)", names, want)
	}
}

// TestAssemble builds the environment from the VM test base's kernel and
// initramfs (Debian's linux-image, through initramfs-tools), which is what
// the VM tests boot.
func TestAssemble(t *testing.T) {
	in := NeedEnvInputs(t)
	dir := t.TempDir()
	env, err := Assemble(in, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"virtio_blk", "virtio_net", "virtio_pci", "nvme", "ahci", "e1000e", "sr_mod", "isofs", "scsi_mod", "usb_storage"} {
		if !slices.Contains(env.Modules, m) {
			t.Errorf("module %s not in %v", m, env.Modules)
		}
	}
	if i, j := slices.Index(env.Modules, "scsi_mod"), slices.Index(env.Modules, "sd_mod"); i > j {
		t.Errorf("scsi_mod loads after sd_mod, which depends on it: %v", env.Modules)
	}
	st, _ := os.Stat(env.Initrd)
	t.Logf("initramfs %d bytes (%.1f MiB), %d modules, missing %v", st.Size(), float64(st.Size())/(1<<20), len(env.Modules), env.Missing)
	// Reproducible.
	env2, err := Assemble(in, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(env.Initrd)
	b, _ := os.ReadFile(env2.Initrd)
	if !bytes.Equal(a, b) {
		t.Error("two assemblies of the same inputs differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	seen := map[string]bool{}
	cpio.ReadArchive(bytes.NewReader(raw), func(e cpio.Entry) error { seen[e.Name] = true; return nil })
	for _, f := range []string{"init", "bin/busybox", "bin/bainode", "etc/bainode/modules", "dev/console",
		filepath.Join("lib/modules", env.KernelVersion, "kernel/drivers/block/virtio_blk.ko")} {
		if !seen[f] {
			t.Errorf("initramfs lacks %s", f)
		}
	}
}

// The init script tells "deployed already" from a failure by the agent's
// exit status, which Go owns.
func TestInitKnowsExitDeployed(t *testing.T) {
	init, err := envFiles.ReadFile("env/init")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`if [ "$rc" = %d ]; then # deploy.ExitDeployed`, ExitDeployed); !strings.Contains(string(init), want) {
		t.Errorf("env/init lacks %q", want)
	}
}

// The init script skips DHCP for a self-contained deploy by finding the
// image's medium key in the config, which Go's JSON tag owns.
func TestInitKnowsMediumKey(t *testing.T) {
	init, err := envFiles.ReadFile("env/init")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(Config{Image: Image{Medium: MediumVolumeID}})
	if !strings.Contains(string(init), `grep -q '"medium"' /etc/bainode/deploy.json`) || !strings.Contains(string(js), `"medium":`) {
		t.Errorf("env/init and Config disagree on the medium key: %s", js)
	}
}
