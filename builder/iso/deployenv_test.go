package iso

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/cpio"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/qemu"
)

// TestBootGenericDeployISO boots a generic image-mode ISO holding the real
// deploy environment (the base's kernel, busybox, a static bainode) as a
// CD under SeaBIOS, with no disk. The agent must find no config, read
// bainode.server= from its command line, fetch node.cpio for its MAC from
// a loopback stand-in of bainoded (guestfwd, restrict=on), take the node's
// config from it, and report the failure (no disk) with the node's token.
func TestBootGenericDeployISO(t *testing.T) {
	needBootTools(t)
	l := needCDLoaders(t)
	img := qemu.Need(t)
	for _, p := range []string{"/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, p+" missing (package busybox-static)")
		}
	}
	t.Parallel()
	dir := t.TempDir()
	agent := filepath.Join(dir, "bainode")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", agent, "github.com/lablup/bainode/cmd/bainode")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build bainode: %v\n%s", err, out)
	}
	env, err := deploy.Assemble(deploy.EnvOptions{Kernel: img.Kernel, Modules: []string{img.Initrd}, Busybox: "/bin/busybox", Agent: agent}, dir)
	if err != nil {
		t.Fatal(err)
	}

	const mac, base = "52:54:00:12:34:56", "http://10.0.2.100"
	cfg := deploy.Config{Node: "iso-test", Server: base, Token: "iso-test-token",
		Image: deploy.Image{URL: base + "/images/x.raw.zst", SHA256: strings.Repeat("a", 64), Size: 10},
		Seed:  base + "/nocloud/iso-test/"}
	js, _ := json.Marshal(cfg)
	a := cpio.NewArchive()
	a.File(deploy.ConfigFile, 0o600, js)
	var node bytes.Buffer
	a.WriteTo(&node)
	var mu sync.Mutex
	var asked []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		switch {
		case r.Method == http.MethodGet && r.URL.Path == deploy.NodeConfigPath(mac):
			w.Write(node.Bytes())
		case r.Method == http.MethodPost && r.URL.Path == deploy.StatusPath(cfg.Node):
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	out := filepath.Join(dir, "generic.iso")
	args := []string{"console=ttyS0,115200n8", deploy.ServerArg + "=" + base + "/"}
	if _, err := WriteDeploy(Deploy{Loaders: l, Kernel: env.Kernel, Initrd: env.Initrd, Args: args}, out, testEpoch); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	ctx, cancel := context.WithTimeout(t.Context(), vm.TCG.Timeout(2*time.Minute))
	defer cancel()
	q := exec.CommandContext(ctx, "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
		"-accel", "tcg", "-machine", "q35", "-m", "1024", "-smp", "1", "-monitor", "none", "-no-reboot",
		"-serial", "file:"+serial,
		"-nic", "user,restrict=on,model=virtio-net-pci,mac="+mac+",guestfwd=tcp:10.0.2.100:80-cmd:busybox nc "+strings.Replace(ln.Addr().String(), ":", " ", 1),
		"-drive", "file="+out+",format=raw,if=ide,media=cdrom,readonly=on")
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { q.Process.Kill(); q.Wait() }()
	start := time.Now()
	var console string
	for !strings.Contains(console, "staying in the deploy environment") {
		if ctx.Err() != nil {
			t.Fatalf("the deploy environment did not finish in time; console:\n%s", tail(console, 40))
		}
		time.Sleep(time.Second)
		b, err := os.ReadFile(serial)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		console = string(b)
	}
	t.Logf("deploy environment from the ISO to the agent's report: %s", time.Since(start).Round(time.Second))
	for _, want := range []string{
		"bainode-deploy: config for " + mac + " from " + base + deploy.NodeConfigPath(mac),
		"bainode-deploy: node iso-test, image " + cfg.Image.SHA256,
		"FAILED: no disk",
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, tail(console, 30))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(asked, "\n")
	for _, want := range []string{
		"GET " + deploy.NodeConfigPath(mac) + " ",
		"POST " + deploy.StatusPath(cfg.Node) + " Bearer " + cfg.Token,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("bainoded stand-in was not asked %q; it was asked:\n%s", want, got)
		}
	}
	if strings.Contains(console, cfg.Token) {
		t.Error("the node's token shows on the console")
	}
}
