package serve_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/cpio"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/serve"
)

type deployFixture struct {
	*fixture
	kernelSHA, initrdSHA, imageSHA string
	image                          []byte
}

func newDeployFixture(t *testing.T) *deployFixture {
	dir := t.TempDir()
	d := &deployFixture{}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	d.kernelSHA = write("vmlinuz", []byte("kernel bytes"))
	d.initrdSHA = write("initrd.img", []byte("initrd bytes"))
	d.image = bytes.Repeat([]byte("zstd image "), 10000)
	d.imageSHA = write("agent.raw.zst", d.image)
	m, _ := json.Marshal(bake.Manifest{Version: 1, Format: bake.FormatRawZst,
		Output: bake.FileSum{Path: "agent.raw.zst", SHA256: d.imageSHA, Size: int64(len(d.image))}})
	write("agent.raw.zst.json", m)
	d.fixture = newFixture(t, func(c *serve.Config) {
		c.Deploy = &serve.Deploy{
			Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
			Images:     map[string]string{"agent": filepath.Join(dir, "agent.raw.zst")},
			KernelArgs: "console=ttyS0",
			Disk: func(site []byte, n inventory.Node) (deploy.DiskRule, error) {
				return deploy.DiskRule{Serial: "SER-" + n.Hostname}, nil
			},
		}
	})
	return d
}

func TestDeployIPXE(t *testing.T) {
	f := newDeployFixture(t)
	code, script := f.do("GET", "/ipxe/52-54-00-aa-bb-01", "", "")
	base := f.srv.URL
	for _, want := range []string{
		"kernel " + base + "/deploy/env/" + f.kernelSHA + "/vmlinuz initrd=initrd.img initrd=node.cpio console=ttyS0\n",
		"initrd --name initrd.img " + base + "/deploy/env/" + f.initrdSHA + "/initrd.img\n",
		"initrd --name node.cpio " + base + "/deploy/52-54-00-aa-bb-01/node.cpio\n",
	} {
		if code != 200 || !strings.Contains(script, want) {
			t.Errorf("deploy script %d lacks %q:\n%s", code, want, script)
		}
	}
	// A role without an image keeps the configured installer.
	if _, s := f.do("GET", "/ipxe/52:54:00:aa:bb:04", "", ""); !strings.Contains(s, "kernel http://boot/vmlinuz") {
		t.Errorf("manager (no image) got:\n%s", s)
	}

	// The agent's config: token, image, disk rule, seed; 0600 inside.
	resp := f.req("GET", "/deploy/52-54-00-aa-bb-01/node.cpio", "", "")
	var cfg deploy.Config
	var mode uint32
	cpio.ReadArchive(resp.Body, func(e cpio.Entry) error {
		if e.Name == "etc/bainode/deploy.json" {
			mode = e.Mode
			return json.Unmarshal(e.Data, &cfg)
		}
		return nil
	})
	resp.Body.Close()
	want := deploy.Config{Node: "gpu1", Server: base, Token: f.tokens["gpu1"],
		Image: deploy.Image{URL: base + "/images/" + f.imageSHA + ".raw.zst", SHA256: f.imageSHA, Size: int64(len(f.image))},
		Disk:  deploy.DiskRule{Serial: "SER-gpu1"}, Seed: base + "/nocloud/gpu1/"}
	if !reflect.DeepEqual(cfg, want) || mode != cpio.ModeFile|0o600 {
		t.Errorf("node.cpio: mode %o\n%+v\nwant\n%+v", mode, cfg, want)
	}
	if code, _ := f.do("GET", "/deploy/52-54-00-aa-bb-04/node.cpio", "", ""); code != 404 {
		t.Errorf("node.cpio of a role without image: %d", code)
	}

	// Stages: only with the node's own token.
	if code, _ := f.do("POST", "/deploy/gpu1/status", f.tokens["gpu2"], `{"stage":"deploying"}`); code != 403 {
		t.Errorf("status with another node's token: %d", code)
	}
	if code, _ := f.do("POST", "/deploy/gpu1/status", f.tokens["gpu1"], `{"stage":"done"}`); code != 400 {
		t.Errorf("unknown stage: %d", code)
	}
	for _, st := range []string{"deploying", "deployed"} {
		if code, body := f.do("POST", "/deploy/gpu1/status", f.tokens["gpu1"], `{"stage":"`+st+`","detail":"x"}`); code != 204 {
			t.Fatalf("status %s: %d %s", st, code, body)
		}
	}
	_, script = f.do("GET", "/ipxe/52-54-00-aa-bb-02", "", "")
	if !strings.Contains(script, "sanboot --no-describe --drive 0x80") || strings.Contains(script, "kernel ") {
		t.Errorf("deployed node's script does not boot its disk:\n%s", script)
	}
	// Cloud-init events after the deploy do not hide its state.
	f.do("POST", "/report/gpu1/"+f.tokens["gpu1"], "", `{"name":"init-network","event_type":"start"}`)
	_, body := f.do("GET", "/api/v1/status", f.admin, "")
	var st struct {
		Nodes []struct {
			Node, Stage string
			Deploy      *struct{ Stage, Result string }
		}
	}
	json.Unmarshal([]byte(body), &st)
	if st.Nodes[0].Node != "gpu1" || st.Nodes[0].Stage != "init-network" || st.Nodes[0].Deploy == nil || st.Nodes[0].Deploy.Result != "deployed" {
		t.Errorf("status: %s", body)
	}
	// Re-armed, it deploys again.
	if code, body := f.do("POST", "/api/v1/nodes/gpu1/redeploy", f.admin, ""); code != 204 {
		t.Fatalf("redeploy: %d %s", code, body)
	}
	if _, script = f.do("GET", "/ipxe/52-54-00-aa-bb-01", "", ""); !strings.Contains(script, "/deploy/env/") {
		t.Errorf("re-armed node's script:\n%s", script)
	}
	if code, _ := f.do("POST", "/api/v1/nodes/nope/redeploy", f.admin, ""); code != 404 {
		t.Errorf("redeploy of an unknown node: %d", code)
	}
}

func TestDeployAssets(t *testing.T) {
	f := newDeployFixture(t)
	f.srv.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := f.req("GET", "/images/"+f.imageSHA+".raw.zst", "", "", "Range", "bytes=100-")
	body := readAll(resp)
	if resp.StatusCode != 206 || body != string(f.image[100:]) || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("image Range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Cache-Control"), len(body))
	}
	if code, b := f.do("GET", "/images/"+f.imageSHA+".raw.zst.json", "", ""); code != 200 || !strings.Contains(b, f.imageSHA) {
		t.Errorf("manifest: %d %s", code, b)
	}
	if code, b := f.do("GET", "/deploy/env/"+f.kernelSHA+"/vmlinuz", "", ""); code != 200 || b != "kernel bytes" {
		t.Errorf("kernel: %d %q", code, b)
	}
	for _, p := range []string{
		"/deploy/env/" + f.initrdSHA + "/vmlinuz", // another file's hash
		"/images/" + f.kernelSHA + ".raw.zst",
		"/images/" + f.imageSHA,
		"/deploy/env/" + f.kernelSHA + "/",
	} {
		if code, _ := f.do("GET", p, "", ""); code != 404 {
			t.Errorf("%s: %d, want 404 (never a redirect)", p, code)
		}
	}
	if code, _ := f.raw("/deploy/env//vmlinuz"); code != 404 {
		t.Errorf("double slash: %d, want 404, not a redirect", code)
	}
}

func TestSiteDisk(t *testing.T) {
	site := []byte(`version: 1
nodes:
  - hostname: gpu1
    role: agent
    disk:
      serial: S4EVNX0
      size: 960G
  - hostname: gpu2
    role: agent
`)
	r, err := serve.SiteDisk(site, inventory.Node{Hostname: "gpu1", Role: "agent"})
	if err != nil || r != (deploy.DiskRule{Serial: "S4EVNX0", Size: 960e9}) {
		t.Errorf("gpu1: %+v, %v", r, err)
	}
	if r, err := serve.SiteDisk(site, inventory.Node{Hostname: "gpu2", Role: "agent"}); err != nil || r != (deploy.DiskRule{}) {
		t.Errorf("gpu2 (no rule: the only disk): %+v, %v", r, err)
	}
	// A node added with overrides carries its own rule.
	r, err = serve.SiteDisk(site, inventory.Node{Hostname: "gpu9", Role: "agent", Overrides: []byte("disk: {by_path: pci-0000:00:04.0}\n")})
	if err != nil || r.ByPath != "pci-0000:00:04.0" {
		t.Errorf("gpu9 with overrides: %+v, %v", r, err)
	}
}
