package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/cpio"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/iso"
)

// isoImage is "bainode iso --mode image": the deploy environment on a
// hybrid ISO, told where bainoded is, with or without one node's config.
func isoImage(c *cli.Context, epoch time.Time) error {
	if c.String("base") != "" {
		return usagef("--base: only for --mode autoinstall")
	}
	envDir := c.String("deploy-env")
	if envDir == "" {
		return usagef("--mode image: --deploy-env DIR is required (bainode deploy-env -o DIR writes it)")
	}
	server, err := deployServer(c.String("server"))
	if err != nil {
		return err
	}
	kernel, initrd := filepath.Join(envDir, "vmlinuz"), filepath.Join(envDir, "initrd.img")
	for _, p := range []string{kernel, initrd} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("--deploy-env: %w (bainode deploy-env -o %s writes it)", err, envDir)
		}
	}
	loaders, err := iso.FindCDLoaders(c.String("loaders"))
	if err != nil {
		return err
	}
	args := strings.Fields(c.String("kernel-args"))
	for _, a := range args {
		if strings.HasPrefix(a, deploy.ServerArg+"=") {
			return usagef("--kernel-args: %s= comes from --server", deploy.ServerArg)
		}
	}
	args = append(args, deploy.ServerArg+"="+server)
	if epoch.IsZero() {
		st, err := os.Stat(kernel)
		if err != nil {
			return err
		}
		epoch = st.ModTime().UTC().Truncate(time.Second)
	}
	var node []byte
	host := c.String("node")
	if host != "" {
		if node, err = nodeCPIO(c, server, host); err != nil {
			return err
		}
	}
	out := c.String("output")
	lay, err := iso.WriteDeploy(iso.Deploy{Loaders: loaders, Kernel: kernel, Initrd: initrd, Node: node, Args: args}, out, epoch)
	if err != nil {
		return err
	}
	what := "generic: the deploy agent fetches its node's config from " + server + " by MAC"
	if host != "" {
		what = "with the deploy config of " + host + " (mode 0600: it holds the node's token)"
	}
	fmt.Fprintf(c.App.Writer, "%s: %.1f MiB, image mode, %s\n", out, float64(lay.Size)/(1<<20), what)
	return nil
}

// deployServer checks --server: the deploy agent and the kernel command
// line take it verbatim.
func deployServer(s string) (string, error) {
	if s == "" {
		return "", usagef("--mode image: --server URL (where machines reach bainoded) is required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		strings.ContainsAny(s, " \t\n'\"\\;$`") {
		return "", usagef("--server: %q is not an http(s)://HOST[:PORT][/PATH] URL without quotes, spaces or ';'", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// nodeCPIO fetches host's node.cpio from bainoded by the MAC the site
// gives it, checks it, and packs its config anew (reproducibly).
func nodeCPIO(c *cli.Context, server, host string) ([]byte, error) {
	site, err := loadSite(c)
	if err != nil {
		return nil, err
	}
	mac := ""
	found := false
	for _, n := range site.Nodes {
		if n.Hostname == host {
			mac, found = n.MAC, true
		}
	}
	switch {
	case !found:
		return nil, usagef("--node: no node %q in the site", host)
	case mac == "":
		return nil, usagef("--node: node %q has no mac in the site; bainoded serves deploy configs by MAC", host)
	}
	u := server + deploy.NodeConfigPath(mac)
	ctx, cancel := context.WithTimeout(c.Context, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--node: fetching %s's deploy config: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--node: %s: %s (is %s added to bainoded with a role that has an image? with bind-ip, bainoded serves it only to the node's address)", u, resp.Status, host)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var js []byte
	err = cpio.ReadArchive(bytes.NewReader(body), func(e cpio.Entry) error {
		if e.Name == deploy.ConfigFile && e.Mode&cpio.ModeType == cpio.ModeFile {
			js = e.Data
		}
		return nil
	})
	if err != nil || js == nil {
		return nil, fmt.Errorf("--node: %s: no %s in it (%v)", u, deploy.ConfigFile, err)
	}
	var cfg deploy.Config
	if err := json.Unmarshal(js, &cfg); err != nil || cfg.Node != host {
		return nil, fmt.Errorf("--node: %s: not %s's deploy config (node %q, %v)", u, host, cfg.Node, err)
	}
	a := cpio.NewArchive()
	if err := a.File(deploy.ConfigFile, 0o600, js); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := a.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
