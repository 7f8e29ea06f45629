package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lablup/bainode/testing/qemu"
)

var agentOnce struct {
	sync.Once
	path string
	err  error
}

// NeedEnvInputs returns the VM test base's kernel and initramfs, the host's
// busybox-static and a static bainode built for the test.
func NeedEnvInputs(t *testing.T) EnvOptions {
	t.Helper()
	img := qemu.Need(t)
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("busybox-static is not installed: %v", err)
		}
		t.Skip("busybox-static is not installed")
	}
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bainode-agent-")
		if err != nil {
			agentOnce.err = err
			return
		}
		agentOnce.path = filepath.Join(dir, "bainode")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", agentOnce.path, "github.com/lablup/bainode/cmd/bainode")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			agentOnce.err = &buildError{err, string(out)}
		}
	})
	if agentOnce.err != nil {
		t.Fatal(agentOnce.err)
	}
	return EnvOptions{Kernel: img.Kernel, Modules: []string{img.Initrd}, Busybox: bb, Agent: agentOnce.path}
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build bainode: " + e.err.Error() + "\n" + e.out }
