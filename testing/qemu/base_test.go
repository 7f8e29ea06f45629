package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeApt(t *testing.T, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := aptDir
	aptDir = dir
	t.Cleanup(func() { aptDir = old })
}

func TestHostSources(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{{
		name: "deb822 bookworm with comments, disabled and third-party stanzas",
		files: map[string]string{"sources.list.d/debian.sources": `Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm-backports
Components: main
Enabled: no
`,
			"sources.list.d/vendor.sources": "Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\n",
			"sources.list.d/docker.list":    "deb [arch=amd64] https://vendor.example/linux/debian bookworm stable\n",
		},
		want: `Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`,
	}, {
		name: "one-line sources of another release are mapped to bookworm",
		files: map[string]string{"sources.list": `# trixie host
deb [signed-by=/k.gpg arch=amd64] http://mirror.example/debian trixie main
deb http://mirror.example/debian-security trixie-security main non-free-firmware
deb http://mirror.example/debian trixie-backports main
deb-src http://mirror.example/debian trixie main
`},
		want: `Types: deb
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
Signed-By: /k.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeApt(t, tt.files)
			got, err := hostSources()
			if err != nil {
				t.Fatalf("hostSources: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("hostSources:\ngot:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestHostSourcesNone(t *testing.T) {
	writeApt(t, map[string]string{"sources.list.d/vendor.list": "deb https://vendor.example/apt stable main\n"})
	if _, err := hostSources(); err == nil || !strings.Contains(err.Error(), "no Debian archive") {
		t.Errorf("hostSources: got %v, want a no Debian archive error", err)
	}
}

func TestRecipe(t *testing.T) {
	if h := RecipeHash(); len(h) != 64 || h != RecipeHash() {
		t.Errorf("RecipeHash = %q, want a stable sha256", h)
	}
	pkgs := packages()
	for _, want := range []string{"linux-image-amd64", "systemd-sysv", "cloud-init", "openssh-server", "nfs-common", "ifupdown"} {
		if !strings.Contains(","+strings.Join(pkgs, ",")+",", ","+want+",") {
			t.Errorf("packages() = %q, missing %s", pkgs, want)
		}
	}
	// The recipe must not pin a mirror or a path of the machine that runs
	// the tests (the checkout, the home directory).
	wd, _ := os.Getwd()
	checkout := filepath.Dir(filepath.Dir(wd)) + "/"
	home, _ := os.UserHomeDir()
	for _, bad := range []string{"http://", "https://", checkout, home + "/"} {
		if strings.Contains(string(buildScript), bad) || strings.Contains(string(packageList), bad) {
			t.Errorf("recipe contains %q", bad)
		}
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lock(context.Background(), path)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	// A second holder (flock locks per open file) waits until its ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second lock while held: got %v, want a deadline error", err)
	}
	unlock()
	unlock2, err := lock(context.Background(), path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestMountedBelow(t *testing.T) {
	if m, err := mountedBelow("/proc"); err != nil || m != "/proc" {
		t.Errorf("mountedBelow(/proc) = %q, %v; want /proc", m, err)
	}
	if m, err := mountedBelow(t.TempDir()); err != nil || m != "" {
		t.Errorf("mountedBelow(temp dir) = %q, %v; want none", m, err)
	}
}
