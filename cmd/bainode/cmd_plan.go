package main

import (
	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/plan"
)

func init() {
	register(&cli.Command{
		Name:  "plan",
		Usage: "show what bainode will install on each node, and from where",
		Description: `plan prints each node's install plan without touching anything: the steps in
order, each marked "image" (can be baked into an image with bainode bake;
without one it runs at first boot) or "node" (runs on the node at first
boot), with the apt repositories, keys, packages and pins, files, container
images and paths each step needs. Then every download and where it comes
from: the online URL, or, for nodes with "artifacts: payload", the path in
the payload disk, with the sha256 when the site pins it.

It answers "what will this do to my machine?" before anything runs as root.
The plan is the one that render, fetch and payload read.

Examples:
  bainode plan                                  # the built-in single-node example
  bainode plan --config site.yaml --node bai-a01
  bainode plan --example cluster --target debian-12
  bainode plan --config site.yaml --json | jq '.[].sources'`,
		Flags: siteFlags(nodeFlag,
			&cli.BoolFlag{Name: "json", Usage: "print the plans as a JSON array"},
			&cli.StringFlag{Name: "arch", Value: "amd64", Usage: "the nodes' Debian architecture `ARCH`"},
			&cli.BoolFlag{Name: "cloud-image", Usage: "include the Ubuntu cloud image each node boots from (as bainode fetch --cloud-image)"},
		),
		Action: runPlan,
	})
}

func runPlan(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("plan takes no arguments, got %q", c.Args().Slice())
	}
	_, nodes, err := prepare(c)
	if err != nil {
		return err
	}
	var ps []*plan.Plan
	for _, n := range nodes {
		p, err := plan.For(n, plan.Options{Arch: c.String("arch"), CloudImage: c.Bool("cloud-image")})
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	if c.Bool("json") {
		return plan.WriteJSON(c.App.Writer, ps)
	}
	return plan.WriteText(c.App.Writer, ps)
}
