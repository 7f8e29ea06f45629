package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/serve"
)

// TestLoadConfigFetch boots nothing: it runs bainoded's handler on
// loopback and has the agent fetch its configuration the way it does
// under pxelinux (no fragment in the initramfs, only ConfigArg on the
// command line), and checks it gets what bainoded's fragment holds.
func TestLoadConfigFetch(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	write("vmlinuz", []byte("kernel"))
	write("initrd.img", []byte("initrd"))
	img := bytes.Repeat([]byte("image "), 1000)
	imgSHA := write("agent.raw.zst", img)
	m, _ := json.Marshal(bake.Manifest{Version: 1, Format: bake.FormatRawZst,
		Output: bake.FileSum{Path: "agent.raw.zst", SHA256: imgSHA, Size: int64(len(img))}})
	write("agent.raw.zst.json", m)

	store := inventory.NewMemory()
	render := serve.RendererFunc(func(site []byte, n inventory.Node, u serve.URLs) (serve.Files, error) {
		return serve.Files{UserData: []byte("#cloud-config\n"), MetaData: []byte("instance-id: " + n.Hostname + "\n")}, nil
	})
	srv := httptest.NewServer(serve.New(serve.Config{Store: store, Renderer: render, Deploy: &serve.Deploy{
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		Images: map[string]string{"agent": filepath.Join(dir, "agent.raw.zst")},
		Disk: func([]byte, inventory.Node) (deploy.DiskRule, error) {
			return deploy.DiskRule{Serial: "SER-1"}, nil
		},
	}}))
	defer srv.Close()
	admin, err := inventory.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	store.PutAdminToken(t.Context(), inventory.HashToken(admin))
	do := func(method, path, body string) string {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return string(b)
	}
	do("PUT", "/api/v1/site", "site: one\n")
	var node struct{ Token string }
	json.Unmarshal([]byte(do("PUT", "/api/v1/nodes/gpu1", `{"macs":["52:54:00:aa:bb:01"],"role":"agent"}`)), &node)
	if node.Token == "" {
		t.Fatal("no node token")
	}

	url := srv.URL + deploy.NodeConfigPath("52:54:00:aa:bb:01")
	cmdline := "BOOT_IMAGE=image/vmlinuz initrd=image/initrd.img " + deploy.ConfigArg + "=" + url + " console=ttyS0 ---"
	missing := filepath.Join(dir, "etc", "deploy.json")
	cfg, err := deploy.LoadConfig(t.Context(), missing, cmdline, deploy.System{})
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.Config{Node: "gpu1", Server: srv.URL, Token: node.Token,
		Image: deploy.Image{URL: srv.URL + "/images/" + imgSHA + ".raw.zst", SHA256: imgSHA, Size: int64(len(img))},
		Disk:  deploy.DiskRule{Serial: "SER-1"}, Seed: srv.URL + "/nocloud/gpu1/"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("fetched\n%+v\nwant\n%+v", cfg, want)
	}

	// A file in the initramfs (iPXE's second initrd) wins over the argument.
	local := filepath.Join(dir, "deploy.json")
	os.WriteFile(local, []byte(`{"node":"from-file"}`), 0o600)
	if cfg, err := deploy.LoadConfig(t.Context(), local, cmdline, deploy.System{}); err != nil || cfg.Node != "from-file" {
		t.Errorf("with a local file: %+v %v", cfg, err)
	}
	// Deployed: bainoded refuses the config at once (no retries), and the
	// agent stops with ErrDeployed, its disk untouched.
	req, _ := http.NewRequest("POST", srv.URL+deploy.StatusPath("gpu1"), strings.NewReader(`{"stage":"deployed"}`))
	req.Header.Set("Authorization", "Bearer "+node.Token)
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("report deployed: %v %v", resp, err)
	}
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
	_, err = deploy.LoadConfig(t.Context(), missing, cmdline, deploy.System{Logf: logf})
	if !errors.Is(err, deploy.ErrDeployed) || !strings.Contains(err.Error(), "bainode nodes redeploy gpu1") {
		t.Errorf("deployed node: %v", err)
	}
	if strings.Contains(strings.Join(logs, "\n"), "retrying") {
		t.Errorf("deployed node: LoadConfig retried:\n%s", strings.Join(logs, "\n"))
	}
	req, _ = http.NewRequest("POST", srv.URL+"/api/v1/nodes/gpu1/redeploy", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("redeploy: %v %v", resp, err)
	}
	if cfg, err := deploy.LoadConfig(t.Context(), missing, cmdline, deploy.System{}); err != nil || cfg.Node != "gpu1" {
		t.Errorf("re-armed node: %+v %v", cfg, err)
	}

	// Neither: a message that says what is missing.
	_, err = deploy.LoadConfig(t.Context(), missing, "console=ttyS0", deploy.System{})
	if err == nil || err.Error() != "no "+missing+" and no bainode.config= or bainode.server= on the kernel command line: boot the deploy environment from bainoded, a 'bainode pxe' tree or a 'bainode iso --mode image' ISO" {
		t.Errorf("no config: %v", err)
	}
}
