package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
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

// ServerArg names bainoded's base URL on the kernel command line, for a
// deploy environment booted without its node's config and without a
// per-node URL (a generic 'bainode iso --mode image'): the agent then
// fetches the fragment by its network cards' MACs, as iPXE does.
const ServerArg = "bainode.server"

// LoadConfig reads the agent's configuration from path; when there is no
// such file (a loader that could not add the fragment), it fetches the
// fragment that ConfigArg on cmdline names, or else the one for one of its
// MACs from the server ServerArg names, and reads the file from it.
func LoadConfig(ctx context.Context, path, cmdline string, sys System) (Config, error) {
	b, err := os.ReadFile(path)
	src := path
	if errors.Is(err, fs.ErrNotExist) {
		url, server := cmdlineValue(cmdline, ConfigArg), strings.TrimRight(cmdlineValue(cmdline, ServerArg), "/")
		if url == "" && server == "" {
			return Config{}, fmt.Errorf("no %s and no %s= or %s= on the kernel command line: boot the deploy environment from bainoded, a 'bainode pxe' tree or a 'bainode iso --mode image' ISO", path, ConfigArg, ServerArg)
		}
		if sys.Client == nil {
			sys.Client = &http.Client{Timeout: time.Minute}
		}
		if sys.Logf == nil {
			sys.Logf = func(string, ...any) {}
		}
		if url != "" {
			sys.Logf("fetching the node's configuration from %s", url)
			b, err = fetchConfig(ctx, sys, url)
			src = url
		} else {
			b, src, err = fetchConfigByMAC(ctx, sys, server)
		}
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

// fetchConfigByMAC asks server for the fragment of each network card's MAC
// (under sys.SysNet). A 404 for every MAC is final (bainoded does not know
// this machine), and so is a 409 (ErrDeployed); other failures (bainoded
// restarting) are retried.
func fetchConfigByMAC(ctx context.Context, sys System, server string) ([]byte, string, error) {
	if sys.SysNet == "" {
		sys.SysNet = "/sys/class/net"
	}
	nics, err := os.ReadDir(sys.SysNet)
	if err != nil {
		return nil, "", err
	}
	var macs []string
	for _, n := range nics {
		a, err := os.ReadFile(filepath.Join(sys.SysNet, n.Name(), "address"))
		if mac := strings.TrimSpace(string(a)); err == nil && len(mac) == 17 && mac != "00:00:00:00:00:00" {
			macs = append(macs, mac)
		}
	}
	if len(macs) == 0 {
		return nil, "", fmt.Errorf("%s: no network card with a MAC address", sys.SysNet)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var errs []error
		unknown := 0
		for _, mac := range macs {
			url := server + NodeConfigPath(mac)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return nil, "", err
			}
			resp, err := sys.Client.Do(req)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			frag, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusConflict:
				return nil, "", fmt.Errorf("%w: %s", ErrDeployed, strings.TrimSpace(string(frag)))
			case resp.StatusCode == http.StatusNotFound:
				unknown++
				errs = append(errs, fmt.Errorf("%s: %s", url, resp.Status))
				continue
			case resp.StatusCode != http.StatusOK || err != nil:
				errs = append(errs, fmt.Errorf("%s: %s %v", url, resp.Status, err))
				continue
			}
			b, err := configFrom(frag)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", url, err)
			}
			sys.Logf("config for %s from %s", mac, url)
			return b, url, nil
		}
		err := fmt.Errorf("no configuration for this machine on %s: %w", server, errors.Join(errs...))
		if unknown == len(macs) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, "", err
		}
		sys.Logf("%v; retrying", err)
		time.Sleep(2 * time.Second)
	}
}

// fetchConfig reads ConfigFile out of the fragment at url, retrying for a
// while: bainoded may be restarting.
func fetchConfig(ctx context.Context, sys System, url string) ([]byte, error) {
	frag, err := getRetry(ctx, sys, url, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	b, err := configFrom(frag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return b, nil
}

// configFrom is ConfigFile out of a fragment.
func configFrom(frag []byte) ([]byte, error) {
	var b []byte
	err := cpio.ReadArchive(bytes.NewReader(frag), func(e cpio.Entry) error {
		if e.Name == ConfigFile && e.Mode&cpio.ModeType == cpio.ModeFile {
			b = e.Data
		}
		return nil
	})
	if err == nil && b == nil {
		err = fmt.Errorf("no %s in it", ConfigFile)
	}
	return b, err
}

// CmdlineFlag reports whether key=1 (or key alone) is on the command line.
func CmdlineFlag(cmdline, key string) bool {
	for _, w := range strings.Fields(cmdline) {
		if w == key || w == key+"=1" {
			return true
		}
	}
	return false
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
