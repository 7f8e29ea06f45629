package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// bake's usage errors exit 2 before anything boots.
func TestBakeUsage(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	os.WriteFile(base, make([]byte, 512), 0o644)
	out := filepath.Join(dir, "out.qcow2")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bake", "--example", "vm-test", "--base", base, "-o", out}, "one of --role and --node"},
		{[]string{"bake", "--example", "vm-test", "--role", "agent", "--node", "bai-vm", "--base", base, "-o", out}, "one of --role and --node"},
		{[]string{"bake", "--example", "vm-test", "--role", "storage", "--base", base, "-o", out}, `--role "storage": no node of the site has it (roles: all-in-one)`},
		{[]string{"bake", "--example", "vm-test", "--node", "ghost", "--base", base, "-o", out}, `--node "ghost"`},
		{[]string{"bake", "--example", "vm-test", "--role", "all-in-one", "--base", base, "-o", out, "--format", "vmdk"}, `--format "vmdk"`},
		{[]string{"bake", "--example", "vm-test", "--role", "all-in-one", "--base", base, "-o", out, "--disk-size", "big"}, `--disk-size: "big"`},
	} {
		stdout, stderr, code := bainode(t, "", tc.args...)
		if code != 2 || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("bainode %s: exit %d, want 2 with %q; got:\n%s%s", strings.Join(tc.args[1:], " "), code, tc.want, stdout, stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a usage error wrote the output")
	}
}

// Without --base, an Ubuntu target's cloud image comes from the fetch
// cache; bake says what to run when it is missing, and that other targets
// need --base.
func TestBakeBaseFromCache(t *testing.T) {
	dir := t.TempDir()
	cache, out := filepath.Join(dir, "cache"), filepath.Join(dir, "out.qcow2")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bake", "--example", "single-node", "--role", "all-in-one", "--cache", cache, "-o", out},
			"focal-server-cloudimg-amd64.img is not in the fetch cache " + cache + "; fetch it (its SHA256SUMS signature is checked) with\n  bainode fetch --example single-node --cache " + cache + " --node bai-aio --cloud-image\n"},
		{[]string{"bake", "--example", "single-node", "--target", "ubuntu-24.04", "--role", "all-in-one", "--cache", cache, "-o", out},
			"noble-server-cloudimg-amd64.img is not in the fetch cache " + cache + "; fetch it (its SHA256SUMS signature is checked) with\n  bainode fetch --example single-node --target ubuntu-24.04 --cache " + cache + " --node bai-aio --cloud-image\n"},
		{[]string{"bake", "--example", "vm-test", "--role", "all-in-one", "--cache", cache, "-o", out}, "target debian-12 has no vendor cloud image in the fetch cache (Ubuntu targets only); give a base disk with --base"},
	} {
		stdout, stderr, code := bainode(t, "", tc.args...)
		if code != 1 || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("bainode %s: exit %d, want 1 with %q; got:\n%s%s", strings.Join(tc.args[1:], " "), code, tc.want, stdout, stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a missing base wrote the output")
	}
}

// seed --image-manifest writes thin seeds for a matching plan and refuses
// another one.
func TestSeedImageManifest(t *testing.T) {
	dir := t.TempDir()
	site, err := spec.Parse("vm-test.yaml", mustExample(t, "vm-test"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Options{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Node(site, &site.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	plan, err := bake.PlanHash(f)
	if err != nil {
		t.Fatal(err)
	}
	good, bad := filepath.Join(dir, "good.json"), filepath.Join(dir, "bad.json")
	for p, h := range map[string]string{good: plan, bad: strings.Repeat("0", 64)} {
		b, _ := json.Marshal(bake.Manifest{Inputs: bake.Inputs{Plan: h}})
		os.WriteFile(p, b, 0o644)
	}
	out := filepath.Join(dir, "out")
	stdout, stderr, code := bainode(t, "", "seed", "--example", "vm-test", "--image-manifest", good, "-o", out)
	ud, _ := os.ReadFile(filepath.Join(out, "bai-vm", "user-data"))
	if code != 0 || !strings.Contains(string(ud), "BAINODE_PHASE=node") || len(ud) > 16<<10 || strings.Contains(stderr, "AWS EC2") {
		t.Errorf("exit %d, user-data %d bytes:\n%s%s", code, len(ud), stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "bai-vm", "seed.iso")); err != nil {
		t.Error(err)
	}
	stdout, stderr, code = bainode(t, "", "seed", "--example", "vm-test", "--image-manifest", bad, "-o", filepath.Join(dir, "out2"))
	if code == 0 || !strings.Contains(stdout+stderr, "not the one the image was baked from") {
		t.Errorf("another plan: exit %d:\n%s%s", code, stdout, stderr)
	}
}

func mustExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := templates.FS.ReadFile("examples/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
