package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lablup/bainode/builder/cpio"
)

// ConfigFile is the agent's configuration inside the deploy environment
// and inside the per-node initramfs fragment bainoded serves.
const ConfigFile = "etc/bainode/deploy.json"

// ConfigArg names, on the kernel command line, the URL of the node's
// initramfs fragment, for loaders that cannot fetch it themselves
// (pxelinux over TFTP; Debian's signed GRUB has no http module). The URL
// holds no secret: bainoded serves the fragment on the terms of the node's
// seed, and the kernel prints its command line to the console.
const ConfigArg = "bainode.config"

// NodeConfigPath is the path of a node's fragment on bainoded, by the MAC
// the node boots from (aa:bb:cc:dd:ee:ff).
func NodeConfigPath(mac string) string {
	return "/deploy/" + strings.ReplaceAll(mac, ":", "-") + "/node.cpio"
}

// LoadConfig reads the agent's configuration from path; when there is no
// such file (a loader that could not add the fragment), it fetches the
// fragment that ConfigArg on cmdline names and reads the file from it.
func LoadConfig(ctx context.Context, path, cmdline string, sys System) (Config, error) {
	b, err := os.ReadFile(path)
	src := path
	if errors.Is(err, fs.ErrNotExist) {
		url := cmdlineValue(cmdline, ConfigArg)
		if url == "" {
			return Config{}, fmt.Errorf("no %s and no %s= on the kernel command line: boot the deploy environment from bainoded or a 'bainode pxe' tree", path, ConfigArg)
		}
		if sys.Client == nil {
			sys.Client = &http.Client{Timeout: time.Minute}
		}
		if sys.Logf == nil {
			sys.Logf = func(string, ...any) {}
		}
		sys.Logf("fetching the node's configuration from %s", url)
		b, err = fetchConfig(ctx, sys, url)
		src = url
	}
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", src, err)
	}
	return cfg, nil
}

// fetchConfig reads ConfigFile out of the fragment at url, retrying for a
// while: bainoded may be restarting.
func fetchConfig(ctx context.Context, sys System, url string) ([]byte, error) {
	frag, err := getRetry(ctx, sys, url, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	var b []byte
	err = cpio.ReadArchive(bytes.NewReader(frag), func(e cpio.Entry) error {
		if e.Name == ConfigFile && e.Mode&cpio.ModeType == cpio.ModeFile {
			b = e.Data
		}
		return nil
	})
	if err == nil && b == nil {
		err = fmt.Errorf("no %s in it", ConfigFile)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return b, nil
}

// cmdlineValue is the value of the last key=value word on a kernel command
// line (the kernel's own rule when a key repeats).
func cmdlineValue(cmdline, key string) string {
	v := ""
	for _, w := range strings.Fields(cmdline) {
		if rest, ok := strings.CutPrefix(w, key+"="); ok {
			v = rest
		}
	}
	return v
}
