package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/cpio"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/iso"
	"github.com/lablup/bainode/builder/render"
)

// isoImage is "bainode iso --mode image": the deploy environment on a
// hybrid ISO, told where bainoded is, with or without one node's config.
func isoImage(c *cli.Context, epoch time.Time) error {
	if c.String("base") != "" {
		return usagef("--base: only for --mode autoinstall")
	}
	if c.String("payload") != "" {
		return usagef("--payload: only for --mode autoinstall (a baked image carries its artifacts)")
	}
	envDir := c.String("deploy-env")
	if envDir == "" {
		return usagef("--mode image: --deploy-env DIR is required (bainode deploy-env -o DIR writes it)")
	}
	image := c.String("image")
	var server string
	var err error
	switch {
	case image != "" && c.String("server") != "":
		return usagef("--image makes a self-contained ISO that needs no bainoded: leave out --server")
	case image != "" && c.String("node") == "":
		return usagef("--image: --node HOSTNAME is required (the ISO carries that node's seed)")
	case image == "":
		if server, err = deployServer(c.String("server")); err != nil {
			return err
		}
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
	if server != "" {
		args = append(args, deploy.ServerArg+"="+server)
	}
	if epoch.IsZero() {
		st, err := os.Stat(kernel)
		if err != nil {
			return err
		}
		epoch = st.ModTime().UTC().Truncate(time.Second)
	}
	var node []byte
	host := c.String("node")
	switch {
	case image != "":
		node, err = mediumConfig(c, host, image)
	case host != "":
		node, err = nodeCPIO(c, server, host)
	}
	if err != nil {
		return err
	}
	out := c.String("output")
	lay, err := iso.WriteDeploy(iso.Deploy{Loaders: loaders, Kernel: kernel, Initrd: initrd, Node: node, Args: args, Image: image}, out, epoch)
	if err != nil {
		return err
	}
	what := "generic: the deploy agent fetches its node's config from " + server + " by MAC"
	switch {
	case image != "":
		what = "self-contained: " + host + "'s seed and the image " + filepath.Base(image) + " (mode 0600: the seed holds the node's secrets)"
	case host != "":
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
	_, node, err := loadNode(c, host)
	if err != nil {
		return nil, err
	}
	mac := node.MAC
	if mac == "" {
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
	return packConfig(js)
}

// packConfig packs the agent's config as the initramfs fragment a loader
// adds to the deploy environment.
func packConfig(js []byte) ([]byte, error) {
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

// mediumConfig is the config of a self-contained ISO: the image is read
// off the medium and the seed is host's, rendered now from the site (the
// node part only, when the image's bake manifest names the plan it was
// baked from). Nothing reaches bainoded.
func mediumConfig(c *cli.Context, host, image string) ([]byte, error) {
	site, node, err := loadNode(c, host)
	if err != nil {
		return nil, err
	}
	sum, size, err := imageSum(image)
	if err != nil {
		return nil, err
	}
	r, err := render.New(render.Options{Version: version})
	if err != nil {
		return nil, err
	}
	var nr nodeRenderer = r
	if m, err := bake.ReadManifest(bake.ManifestPath(image)); err == nil {
		if m.Output.SHA256 != "" && m.Output.SHA256 != sum {
			return nil, fmt.Errorf("--image: %s has sha256 %s, its bake manifest says %s", image, sum, m.Output.SHA256)
		}
		if m.Inputs.Plan != "" {
			nr = thinRenderer{r, m}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--image: %w", err)
	}
	f, err := nr.Node(site, node)
	if err != nil {
		return nil, fmt.Errorf("--node %s: %w", host, err)
	}
	for _, w := range f.Warnings {
		warnf("%s", w)
	}
	rule, err := deploy.RuleOf(node.Disk)
	if err != nil {
		return nil, fmt.Errorf("--node %s: disk: %w", host, err)
	}
	seedFiles := map[string][]byte{}
	for name, b := range f.Map() {
		if len(b) > 0 {
			seedFiles[name] = b
		}
	}
	js, err := json.MarshalIndent(deploy.Config{Node: host, Disk: rule, SeedFiles: seedFiles,
		Image: deploy.Image{Medium: iso.DeployVolumeID, Parts: deploy.MediumParts(size), SHA256: sum, Size: size}}, "", "  ")
	if err != nil {
		return nil, err
	}
	return packConfig(append(js, '\n'))
}

// imageSum is the sha256 and size of the compressed image, which must be a
// zstd stream (bainode bake --format raw.zst).
func imageSum(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("--image: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return "", 0, usagef("--image: %s is not a zstd stream (bainode bake --format raw.zst writes one)", p)
	}
	h := sha256.New()
	h.Write(magic)
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("--image: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n + 4, nil
}
