package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// Examples are the built-in sites, in templates/examples.
func exampleNames() []string {
	des, _ := fs.ReadDir(templates.FS, "examples")
	var names []string
	for _, de := range des {
		names = append(names, strings.TrimSuffix(de.Name(), ".yaml"))
	}
	return names
}

const defaultExample = "single-node"

// siteFlags choose the site; every command that reads one takes them.
func siteFlags(more ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "site file `FILE`; without it the built-in example is used", EnvVars: []string{"BAINODE_CONFIG"}},
		&cli.StringFlag{Name: "example", Usage: "built-in example site `NAME`: " + strings.Join(exampleNames(), ", ")},
		&cli.StringFlag{Name: "target", Usage: "override the site's target `OS`: " + strings.Join(spec.Targets, ", ")},
	}, more...)
}

// loadSite reads --config, or the --example (default single-node), and
// applies --target. Errors in the site file are usage errors (exit 2).
func loadSite(c *cli.Context) (*spec.Site, error) {
	cfg, ex := c.String("config"), c.String("example")
	var (
		site *spec.Site
		err  error
	)
	switch {
	case cfg != "" && ex != "":
		return nil, usagef("--config and --example are exclusive")
	case cfg != "":
		site, err = spec.Load(cfg)
	default:
		if ex == "" {
			ex = defaultExample
		}
		if !slices.Contains(exampleNames(), ex) {
			return nil, usagef("no built-in example %q; want one of %s", ex, strings.Join(exampleNames(), ", "))
		}
		name := path.Join("examples", ex+".yaml")
		b, rerr := fs.ReadFile(templates.FS, name)
		if rerr != nil {
			return nil, rerr
		}
		site, err = spec.Parse("example:"+ex, b)
	}
	var se *spec.Error
	if errors.As(err, &se) {
		return nil, usageError{err}
	}
	if err != nil {
		return nil, err
	}
	if t := c.String("target"); t != "" {
		if !slices.Contains(spec.Targets, t) {
			return nil, usagef("--target %q: want one of %s", t, strings.Join(spec.Targets, ", "))
		}
		site.Target = t
		for i := range site.Nodes {
			site.Nodes[i].Target = t
		}
	}
	return site, nil
}

// selectNodes returns the nodes named by --node, or all of them.
func selectNodes(c *cli.Context, site *spec.Site) ([]*spec.Node, error) {
	want := c.StringSlice("node")
	var out []*spec.Node
	for i := range site.Nodes {
		n := &site.Nodes[i]
		if len(want) == 0 || slices.Contains(want, n.Hostname) {
			out = append(out, n)
		}
	}
	for _, w := range want {
		if !slices.ContainsFunc(out, func(n *spec.Node) bool { return n.Hostname == w }) {
			return nil, usagef("--node %q: the site has no such node", w)
		}
	}
	return out, nil
}

// prepare loads the site and selects the nodes --node names (all without it).
func prepare(c *cli.Context) (*spec.Site, []*spec.Node, error) {
	site, err := loadSite(c)
	if err != nil {
		return nil, nil, err
	}
	nodes, err := selectNodes(c, site)
	return site, nodes, err
}

var nodeFlag = &cli.StringSliceFlag{Name: "node", Aliases: []string{"n"}, Usage: "only this node `HOSTNAME` (repeatable)"}

func warnf(format string, a ...any) { fmt.Fprintf(os.Stderr, "bainode: warning: "+format+"\n", a...) }

// loadNode loads the site (--config or --example) and its node host.
func loadNode(c *cli.Context, host string) (*spec.Site, *spec.Node, error) {
	site, err := loadSite(c)
	if err != nil {
		return nil, nil, err
	}
	node, err := siteNode(site, host)
	return site, node, err
}

// siteNode is the site's node named host.
func siteNode(site *spec.Site, host string) (*spec.Node, error) {
	for i := range site.Nodes {
		if site.Nodes[i].Hostname == host {
			return &site.Nodes[i], nil
		}
	}
	return nil, usagef("--node: no node %q in the site", host)
}
