package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/spec"
)

var outFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "out", Usage: "write `DIR`/<hostname>/ for each node"}

var cloudFlag = &cli.StringFlag{Name: "cloud", Usage: "fail a node whose user-data is over the limit of cloud `NAME`: " + strings.Join(render.CloudNames(), ", ")}

// forCloud wraps r so that a node over --cloud's user-data limit fails.
func forCloud(c *cli.Context, r nodeRenderer) (nodeRenderer, error) {
	name := c.String("cloud")
	if name == "" {
		return r, nil
	}
	cl, err := render.ParseCloud(name)
	if err != nil {
		return nil, usagef("--cloud: %v", err)
	}
	return cloudRenderer{r, cl}, nil
}

type cloudRenderer struct {
	r     nodeRenderer
	cloud render.Cloud
}

func (cr cloudRenderer) Node(site *spec.Site, n *spec.Node) (render.Files, error) {
	f, err := cr.r.Node(site, n)
	if err != nil {
		return f, err
	}
	if err := cr.cloud.Fit("", f); err != nil {
		return render.Files{}, err
	}
	// The cloud is known: EC2's warning is about another one, or passed.
	ec2 := render.SizeWarning(n.Hostname, f)
	f.Warnings = slices.DeleteFunc(f.Warnings, func(w string) bool { return w == ec2 })
	return f, nil
}

func init() {
	register(&cli.Command{
		Name:  "render",
		Usage: "write cloud-init user-data, meta-data, network-config and vendor-data for each node",
		Description: `Writes DIR/<hostname>/{user-data,meta-data,network-config,vendor-data}.
user-data is mode 0600 when it holds a password hash, SSH keys or registry
tokens. Use the files as they are on cloud instances, or make seeds with
'bainode seed'.

Examples:
  bainode render --config site.yaml -o out
  bainode render --example cluster --node bai-a01 --stdout | \
    openstack server create --user-data /dev/stdin ...`,
		Flags: siteFlags(outFlag, nodeFlag, cloudFlag,
			&cli.BoolFlag{Name: "stdout", Usage: "print the user-data of the one selected node instead of writing files"},
		),
		Action: func(c *cli.Context) error {
			site, nodes, err := prepare(c)
			if err != nil {
				return err
			}
			r, err := render.New(render.Options{Version: version})
			if err != nil {
				return err
			}
			if c.Bool("stdout") {
				if len(nodes) != 1 {
					return usagef("--stdout needs exactly one node; pick one with --node")
				}
				cr, err := forCloud(c, r)
				if err != nil {
					return err
				}
				f, err := cr.Node(site, nodes[0])
				if err != nil {
					return fmt.Errorf("%s: %w", nodes[0].Hostname, err)
				}
				for _, w := range f.Warnings {
					warnf("%s", w)
				}
				_, err = c.App.Writer.Write(f.UserData)
				return err
			}
			return forEachNode(c, site, nodes, r, nil)
		},
	})
	register(&cli.Command{
		Name:  "seed",
		Usage: "render each node and write its NoCloud seed image",
		Description: `Like render, and also writes DIR/<hostname>/seed.iso (ISO9660, volume id
"cidata", Rock Ridge) or seed.img (FAT12, label "CIDATA") with --format vfat.
Attach the image as a CD-ROM or disk; cloud-init's NoCloud datasource finds it
by label. Seeds are reproducible: the same inputs give the same bytes
(SOURCE_DATE_EPOCH sets the timestamps).

With --image-manifest, the seeds are for an image made by 'bainode bake':
they carry the node's part of the plan only (hostname, hosts block, /vfroot,
the verifier run), and a site whose plan differs from the image's is refused.

Examples:
  bainode seed -o out                        # the built-in single-node example
  bainode seed -c site.yaml --image-manifest agent.qcow2.json -o out
  bainode seed --config site.yaml --format vfat -o out`,
		Flags: siteFlags(outFlag, nodeFlag, cloudFlag,
			&cli.StringFlag{Name: "format", Usage: "seed `FORMAT`: iso or vfat (default: the site's seed.format, else iso)"},
			&cli.StringFlag{Name: "image-manifest", Usage: "thin seeds for the image `FILE`.json that bainode bake wrote: the node part only"},
		),
		Action: func(c *cli.Context) error {
			site, nodes, err := prepare(c)
			if err != nil {
				return err
			}
			fv := site.Seed.Format
			if c.IsSet("format") {
				fv = c.String("format")
			}
			format, err := seed.ParseFormat(fv)
			if err != nil {
				return usagef("--format: %v", err)
			}
			r, err := render.New(render.Options{Version: version})
			if err != nil {
				return err
			}
			if p := c.String("image-manifest"); p != "" {
				m, err := bake.ReadManifest(p)
				if err != nil {
					return usagef("--image-manifest: %v", err)
				}
				return forEachNode(c, site, nodes, thinRenderer{r, m}, &format)
			}
			return forEachNode(c, site, nodes, r, &format)
		},
	})
}

// forEachNode renders every node into DIR/<hostname>/ and, with a format,
// writes its seed there too. Nodes are done by a small pool of workers, one
// per CPU, while warnings and the line for each node are printed in the
// site's order. On a failure no further node is started; the first failing
// node's error is returned once the nodes in progress are finished.
func forEachNode(c *cli.Context, site *spec.Site, nodes []*spec.Node, r nodeRenderer, format *seed.Format) error {
	r, err := forCloud(c, r)
	if err != nil {
		return err
	}
	out := c.String("output")
	defer removeScratchOnSignal()()
	// Tools that create their own files (go-diskfs's ISO workspace) make
	// them 0644; under umask 077 they are private from the first byte.
	// Public outputs get their 0644 from writeFile.
	defer unix.Umask(unix.Umask(0o077))
	type result struct {
		warnings []string
		line     string
		err      error
	}
	// One buffered channel per node: workers never wait for the printer.
	results := make([]chan result, len(nodes))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	var (
		next   atomic.Int64 // index of the next node to start
		failed atomic.Bool  // stop starting nodes
		wg     sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), len(nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(nodes) {
					return
				}
				var res result
				res.warnings, res.line, res.err = doNode(out, site, nodes[i], r, format)
				if res.err != nil {
					failed.Store(true)
				}
				results[i] <- res
			}
		}()
	}
	// Nodes are started in order, so every node before a started one has
	// been started too and its result will come.
	for i := range nodes {
		res := <-results[i]
		for _, w := range res.warnings {
			warnf("%s", w)
		}
		if res.err != nil {
			failed.Store(true)
			err = res.err
			break
		}
		fmt.Fprintln(c.App.Writer, res.line)
	}
	wg.Wait()
	return err
}

// doNode renders one node into DIR/<hostname>/, writes its seed when format
// is set, and returns its warnings and the line to print for it.
func doNode(out string, site *spec.Site, n *spec.Node, r nodeRenderer, format *seed.Format) ([]string, string, error) {
	f, err := r.Node(site, n)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", n.Hostname, err)
	}
	dir := filepath.Join(out, n.Hostname)
	if err := mkdirPublic(dir); err != nil {
		return f.Warnings, "", err
	}
	for name, b := range f.Map() {
		mode := os.FileMode(0o644)
		if name == "user-data" && f.Secret {
			mode = 0o600
		}
		if err := writeFile(filepath.Join(dir, name), b, mode); err != nil {
			return f.Warnings, "", err
		}
	}
	what := "cloud-init files"
	if format != nil {
		p := filepath.Join(dir, "seed"+format.Ext())
		if err := seed.Write(p, f.FS(), *format); err != nil {
			return f.Warnings, "", err
		}
		what = "cloud-init files and " + filepath.Base(p)
	}
	return f.Warnings, fmt.Sprintf("%s: %s in %s", n.Hostname, what, dir), nil
}

// nodeRenderer renders one node's files: the renderer itself, or a
// thinRenderer for baked images.
type nodeRenderer interface {
	Node(*spec.Site, *spec.Node) (render.Files, error)
}

// thinRenderer makes node seeds for an image baked from the same plan.
type thinRenderer struct {
	r *render.Renderer
	m bake.Manifest
}

func (t thinRenderer) Node(site *spec.Site, n *spec.Node) (render.Files, error) {
	f, err := t.r.Node(site, n)
	if err != nil {
		return f, err
	}
	if err := bake.CheckPlan(t.m, f); err != nil {
		return f, err
	}
	thin, err := bake.NodeSeed(f)
	if err != nil {
		return f, err
	}
	// bake.NodeSeed writes plain user-data.
	thin.Gzipped, thin.GzipSize = false, 0
	// The full seed's size warning is about what the image now carries.
	thin.Warnings = nil
	for _, w := range f.Warnings {
		if w != render.SizeWarning(n.Hostname, f) {
			thin.Warnings = append(thin.Warnings, w)
		}
	}
	if w := render.SizeWarning(n.Hostname, thin); w != "" {
		thin.Warnings = append(thin.Warnings, w)
	}
	return thin, nil
}
