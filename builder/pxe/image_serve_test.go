package pxe_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/pxe"
	"github.com/lablup/bainode/builder/serve"
)

// TestImageTreeWithBainoded writes an image-mode tree for a node and runs
// bainoded's handler on loopback serving it. The agent, booted the
// pxelinux way (no fragment, only the tree's command line), gets the
// node's token from bainoded; no file of the tree holds it.
func TestImageTreeWithBainoded(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	write("env/vmlinuz", []byte("deploy kernel"))
	write("env/initrd.img", []byte("deploy initrd"))
	img := bytes.Repeat([]byte("image "), 1000)
	sha := write("agent.raw.zst", img)
	m, _ := json.Marshal(bake.Manifest{Version: 1, Format: bake.FormatRawZst,
		Output: bake.FileSum{Path: "agent.raw.zst", SHA256: sha, Size: int64(len(img))}})
	write("agent.raw.zst.json", m)
	var loaders pxe.Loaders
	for _, p := range []*string{&loaders.PXELinux, &loaders.LDLinux, &loaders.Shim, &loaders.GRUB} {
		*p = filepath.Join(dir, "env", "vmlinuz") // any file: Build only copies them
	}

	store := inventory.NewMemory()
	srv := httptest.NewUnstartedServer(nil)
	server := "http://" + srv.Listener.Addr().String()
	pxeDir := filepath.Join(dir, "pxe")
	srv.Config.Handler = serve.New(serve.Config{Store: store, PXEDir: pxeDir,
		Renderer: serve.RendererFunc(func(site []byte, n inventory.Node, u serve.URLs) (serve.Files, error) {
			return serve.Files{UserData: []byte("#cloud-config\n"), MetaData: []byte("instance-id: x\n")}, nil
		}),
		Deploy: &serve.Deploy{Kernel: filepath.Join(dir, "env/vmlinuz"), Initrd: filepath.Join(dir, "env/initrd.img"),
			Images: map[string]string{"agent": filepath.Join(dir, "agent.raw.zst")}}})
	srv.Start()
	defer srv.Close()
	admin, _ := inventory.NewToken()
	store.PutAdminToken(t.Context(), inventory.HashToken(admin))
	do := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, server+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	do("PUT", "/api/v1/site", "site: one\n")
	_, b := do("PUT", "/api/v1/nodes/bai-a01", `{"macs":["52:54:00:20:30:20"],"role":"agent"}`)
	var node struct{ Token string }
	json.Unmarshal(b, &node)
	if node.Token == "" {
		t.Fatalf("no node token: %s", b)
	}

	tree, _, err := pxe.Build(pxe.Options{Server: server, Loaders: loaders, DeployEnv: filepath.Join(dir, "env"),
		Images: map[string]string{"agent": "agent.raw.zst"}, Version: "test"},
		[]pxe.NodeInput{{Hostname: "bai-a01", MAC: "52-54-00-20-30-20", Target: "debian-12", Role: "agent"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := tree.Seal("test")
	if err != nil {
		t.Fatal(err)
	}
	root, err := tree.Write(pxeDir, id)
	if err != nil {
		t.Fatal(err)
	}

	// bainoded serves the tree's deploy kernel.
	if code, b := do("GET", "/pxe/"+id+"/image/vmlinuz", ""); code != 200 || string(b) != "deploy kernel" {
		t.Errorf("GET /pxe/%s/image/vmlinuz: %d %q", id, code, b)
	}
	// pxelinux's command line, as the kernel gets it.
	cfg, err := os.ReadFile(filepath.Join(root, "pxelinux.cfg", "01-52-54-00-20-30-20"))
	if err != nil {
		t.Fatal(err)
	}
	var cmdline string
	for sc := bufio.NewScanner(bytes.NewReader(cfg)); sc.Scan(); {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "APPEND "); ok {
			cmdline = "BOOT_IMAGE=image/vmlinuz " + rest
		}
	}
	got, err := deploy.LoadConfig(t.Context(), filepath.Join(dir, "no-such-file"), cmdline, deploy.System{})
	if err != nil {
		t.Fatalf("agent with %q: %v", cmdline, err)
	}
	if got.Token != node.Token || got.Node != "bai-a01" || got.Image.SHA256 != sha {
		t.Errorf("agent got %+v; want node bai-a01, its token and image %s", got, sha)
	}

	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if bytes.Contains(b, []byte(node.Token)) {
			t.Errorf("%s holds the node's token", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
