package serve

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
)

// SiteRenderer serves what `bainode render` writes for a node: its
// user-data, meta-data and network-config are the same bytes. A node that
// the site file does not list is rendered as if it were appended to the
// site's nodes with its inventory hostname, role, MAC, IP and overrides.
// Progress reporting goes in vendor-data, so user-data stays identical.
func SiteRenderer(r *render.Renderer) Renderer {
	return RendererFunc(func(site []byte, n inventory.Node, u URLs) (Files, error) {
		s, node, err := siteNode(site, n)
		if err != nil {
			return Files{}, err
		}
		f, err := r.Node(s, node)
		if err != nil {
			return Files{}, err
		}
		return Files{UserData: f.UserData, MetaData: f.MetaData, NetworkConfig: f.NetworkConfig, VendorData: vendorData(u)}, nil
	})
}

// ValidateSite is the Validator for bainode site files.
func ValidateSite(site []byte) error {
	_, err := spec.Parse("site.yaml", site)
	return err
}

// vendorData makes cloud-init report its stages to the webhook and phone
// home at the end, with this node's own token in both URLs.
func vendorData(u URLs) []byte {
	q := func(s string) string { b, _ := yaml.Marshal(s); return strings.TrimSpace(string(b)) }
	return []byte(fmt.Sprintf(`#cloud-config
reporting:
  bainode:
    type: webhook
    endpoint: %s
phone_home:
  url: %s
  post: all
  tries: 10
`, q(u.Report), q(u.PhoneHome)))
}

// siteNode parses the site with the inventory node in it.
func siteNode(site []byte, n inventory.Node) (*spec.Site, *spec.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(site, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("site file is not a YAML mapping")
	}
	root := doc.Content[0]
	var nodes *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "nodes" {
			nodes = root.Content[i+1]
		}
	}
	if nodes == nil {
		nodes = &yaml.Node{Kind: yaml.SequenceNode}
		root.Content = append(root.Content, scalar("nodes"), nodes)
	}
	listed := false
	for _, c := range nodes.Content {
		for i := 0; i+1 < len(c.Content); i += 2 {
			if c.Content[i].Value == "hostname" && c.Content[i+1].Value == n.Hostname {
				listed = true
			}
		}
	}
	if !listed {
		m, err := nodeYAML(n)
		if err != nil {
			return nil, nil, err
		}
		nodes.Content = append(nodes.Content, m)
	}
	b, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, nil, err
	}
	s, err := spec.Parse("site.yaml", b)
	if err != nil {
		return nil, nil, err
	}
	for i := range s.Nodes {
		if s.Nodes[i].Hostname == n.Hostname {
			return s, &s.Nodes[i], nil
		}
	}
	return nil, nil, fmt.Errorf("node %s is not in the site", n.Hostname)
}

func nodeYAML(n inventory.Node) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k, v string) {
		if v != "" {
			m.Content = append(m.Content, scalar(k), scalar(v))
		}
	}
	add("hostname", n.Hostname)
	add("role", n.Role)
	if len(n.MACs) > 0 {
		add("mac", n.MACs[0])
	}
	add("ip", n.IP)
	if len(n.Overrides) > 0 {
		var o yaml.Node
		if err := yaml.Unmarshal(n.Overrides, &o); err != nil || len(o.Content) == 0 || o.Content[0].Kind != yaml.MappingNode {
			return nil, fmt.Errorf("node %s: overrides are not a YAML mapping", n.Hostname)
		}
		m.Content = append(m.Content, o.Content[0].Content...)
	}
	return m, nil
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
