package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
)

// everythingOn turns on every part of the single-node example: the
// largest realistic node.
const everythingOn = `operator:
  password_hash: "$6$saltsalt$.XeWDrCjouuYgs/UGMlCRi7DbQGo.D1eElJrsOdTTiB3cMADnjs1koQGbOqnqfjNvuX4oBtad6mDPQUgJiwjZ1"
  ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ops@example"]
gpu: {enabled: true, cuda: "12-2", toolkit: true}
storage: {nfs: [{name: data1, server: 10.20.30.5, export: /export/data1}]}
images: {registries: [{registry: cr.example.com, username: robot, token: t0ken}]}
docker: {daemon_json: {log-driver: json-file, log-opts: {max-size: 100m}}}
`

// --cloud ec2: the largest realistic node of each target does not fit as a
// full seed, and says so with its size and what works; its thin seed for
// a baked image fits. A node that fits gzipped is told to set seed.gzip.
func TestCloudLimit(t *testing.T) {
	dir := t.TempDir()
	r, err := render.New(render.Options{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range spec.Targets {
		src := strings.Replace(string(mustExample(t, "single-node")), "target: ubuntu-20.04", "target: "+target, 1) + everythingOn
		site := filepath.Join(dir, target+".yaml")
		os.WriteFile(site, []byte(src), 0o644)
		zsite := filepath.Join(dir, target+"-gzip.yaml")
		os.WriteFile(zsite, []byte(src+"seed: {gzip: true}\n"), 0o644)

		// The full seed, gzipped: too large, with the number and the advice.
		out := filepath.Join(dir, target)
		if _, e, code := bainode(t, "", "render", "-c", zsite, "-o", out); code != 0 {
			t.Fatalf("%s: render: exit %d\n%s", target, code, e)
		}
		ud, _ := os.ReadFile(filepath.Join(out, "bai-aio", "user-data"))
		_, e, code := bainode(t, "", "render", "-c", zsite, "--cloud", "ec2", "-o", filepath.Join(dir, "x"))
		want := fmt.Sprintf("bai-aio: user-data is %s bytes gzipped, over the 16,384 bytes AWS EC2 takes", commaInt(len(ud)))
		if len(ud) <= render.UserDataLimit {
			if code != 0 {
				t.Errorf("%s: %d bytes fit, but --cloud ec2 exits %d:\n%s", target, len(ud), code, e)
			}
		} else if code != 1 || !strings.Contains(e, want) || !strings.Contains(e, "bainode seed --image-manifest IMAGE.json") {
			t.Errorf("%s: exit %d, want 1 with %q and the advice; stderr:\n%s", target, code, want, e)
		}

		// Its thin seed for an image baked from the same plan fits.
		s, err := spec.Load(site)
		if err != nil {
			t.Fatal(err)
		}
		f, err := r.Node(s, &s.Nodes[0])
		if err != nil {
			t.Fatal(err)
		}
		h, err := bake.PlanHash(f)
		if err != nil {
			t.Fatal(err)
		}
		m := filepath.Join(dir, target+".json")
		b, _ := json.Marshal(bake.Manifest{Inputs: bake.Inputs{Plan: h}})
		os.WriteFile(m, b, 0o644)
		thin := filepath.Join(dir, target+"-thin")
		if o, e, code := bainode(t, "", "seed", "-c", site, "--image-manifest", m, "--cloud", "ec2", "-o", thin); code != 0 {
			t.Errorf("%s: thin seed with --cloud ec2: exit %d\n%s%s", target, code, o, e)
		}
		thinUD, _ := os.ReadFile(filepath.Join(thin, "bai-aio", "user-data"))
		if len(thinUD) == 0 || len(thinUD) > render.UserDataLimit {
			t.Errorf("%s: thin user-data is %d bytes", target, len(thinUD))
		}
		t.Logf("%s, everything on: full user-data %d bytes gzipped, thin %d bytes", target, len(ud), len(thinUD))
	}

	// vm-test fits only gzipped: the error names seed.gzip and the size it
	// gives, which is what seed.gzip then writes.
	_, e, code := bainode(t, "", "render", "--example", "vm-test", "--cloud", "ec2", "-o", filepath.Join(dir, "vm"))
	src := string(mustExample(t, "vm-test")) + "seed: {gzip: true}\n"
	zsite := filepath.Join(dir, "vm-gzip.yaml")
	os.WriteFile(zsite, []byte(src), 0o644)
	if o, e, code := bainode(t, "", "render", "-c", zsite, "--cloud", "ec2", "-o", filepath.Join(dir, "vmz")); code != 0 {
		t.Fatalf("vm-test with seed.gzip: exit %d\n%s%s", code, o, e)
	}
	ud, _ := os.ReadFile(filepath.Join(dir, "vmz", "bai-vm", "user-data"))
	want := fmt.Sprintf(" bytes (%s with seed.gzip), over the 16,384 bytes AWS EC2 takes; set seed.gzip: true in the site file", commaInt(len(ud)))
	if code != 1 || !strings.Contains(e, "bai-vm: user-data is ") || !strings.Contains(e, want) {
		t.Errorf("vm-test: exit %d, want 1 with %q; stderr:\n%s", code, want, e)
	}

	if _, e, code := bainode(t, "", "render", "--cloud", "ec3", "-o", filepath.Join(dir, "y")); code != 2 || !strings.Contains(e, `--cloud: "ec3" is not a cloud bainode knows; want one of azure, ec2, gcp, openstack`) {
		t.Errorf("--cloud ec3: exit %d\n%s", code, e)
	}
}

func commaInt(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
