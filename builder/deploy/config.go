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

// ServerArg is the kernel argument that names bainoded to a deploy
// environment booted without its node's config (a generic ISO): the
// agent then fetches the config by the machine's MAC, as iPXE does.
const ServerArg = "bainode.server="

// ConfigPath is where the node's config sits in the deploy environment
// (bainoded's node.cpio puts it there).
const ConfigPath = "etc/bainode/deploy.json"

// NodeCPIOPath is where bainoded serves a node's config, by MAC
// (aa-bb-cc-dd-ee-ff), below its base URL.
func NodeCPIOPath(mac string) string {
	return "/deploy/" + strings.ReplaceAll(mac, ":", "-") + "/node.cpio"
}

// LoadConfig reads the agent's config from file. If file does not exist
// and cmdline holds bainode.server=URL, it fetches node.cpio from there
// for each network card's MAC (under sysNet, /sys/class/net) and takes
// the config out of the first one bainoded knows.
func LoadConfig(ctx context.Context, file, cmdline, sysNet string, sys System) (Config, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		server := ""
		for _, a := range strings.Fields(cmdline) {
			if v, ok := strings.CutPrefix(a, ServerArg); ok {
				server = strings.TrimRight(strings.Trim(v, `"'`), "/")
			}
		}
		if server == "" {
			return Config{}, fmt.Errorf("%s: not found, and no %sURL on the kernel command line", file, ServerArg)
		}
		b, err = fetchConfig(ctx, server, sysNet, sys)
	}
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	return cfg, nil
}

func fetchConfig(ctx context.Context, server, sysNet string, sys System) ([]byte, error) {
	if sys.Logf == nil {
		sys.Logf = func(string, ...any) {}
	}
	if sys.Client == nil {
		sys.Client = &http.Client{Timeout: time.Minute}
	}
	nics, err := os.ReadDir(sysNet)
	if err != nil {
		return nil, err
	}
	var macs []string
	for _, n := range nics {
		a, err := os.ReadFile(filepath.Join(sysNet, n.Name(), "address"))
		if mac := strings.TrimSpace(string(a)); err == nil && len(mac) == 17 && mac != "00:00:00:00:00:00" {
			macs = append(macs, mac)
		}
	}
	if len(macs) == 0 {
		return nil, fmt.Errorf("%s: no network card with a MAC address", sysNet)
	}
	// A 404 for every MAC is final (bainoded does not know this machine);
	// other failures (bainoded restarting) are retried for a while.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var errs []error
		unknown := 0
		for _, mac := range macs {
			url := server + NodeCPIOPath(mac)
			body, status, err := get(ctx, sys.Client, url)
			if status == http.StatusNotFound {
				unknown++
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			var cfg []byte
			err = cpio.ReadArchive(bytes.NewReader(body), func(e cpio.Entry) error {
				if e.Name == ConfigPath && e.Mode&cpio.ModeType == cpio.ModeFile {
					cfg = e.Data
				}
				return nil
			})
			if err != nil || cfg == nil {
				return nil, fmt.Errorf("%s: no %s in it (%v)", url, ConfigPath, err)
			}
			sys.Logf("config for %s from %s", mac, url)
			return cfg, nil
		}
		err := fmt.Errorf("no config for this machine on %s: %w", server, errors.Join(errs...))
		if unknown == len(macs) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		sys.Logf("%v; retrying", err)
		time.Sleep(2 * time.Second)
	}
}

func get(ctx context.Context, c *http.Client, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b, resp.StatusCode, err
}
