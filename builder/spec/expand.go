package spec

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// expander copies the parsed tree into one without aliases or merge keys,
// which the decoder can then read like any other value. On the way it
// enforces the loader's limits and the strictness rules that yaml.v3 leaves
// to its caller: a key written twice, a key that is not a plain value, and a
// control character in any value.
type expander struct {
	r     *report
	count int
	over  bool
}

// expand returns the copy of n, or nil once the value budget is spent.
func (x *expander) expand(n *yaml.Node, path string, depth int) *yaml.Node {
	if x.over {
		return nil
	}
	alias := n
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if x.count++; x.count > MaxValues {
		x.over = true
		x.r.add(posOf(alias), path, "the file holds more than %d values once its aliases are expanded; a site needs far fewer", MaxValues)
		return nil
	}
	if depth > MaxDepth {
		x.r.add(posOf(n), path, "nested more than %d levels deep", MaxDepth)
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	out := &yaml.Node{Kind: n.Kind, Style: n.Style, Tag: n.Tag, Value: n.Value, Line: n.Line, Column: n.Column}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			out.Content = append(out.Content, x.expand(c, path, depth))
		}
	case yaml.ScalarNode:
		if c, bad := badRune(n.Value); bad {
			x.r.taint(posOf(alias), path, "holds %s; a site value must be printable text on one line", runeName(c))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			e := x.expand(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if e == nil {
				return nil
			}
			out.Content = append(out.Content, e)
		}
	case yaml.MappingNode:
		if !x.mapping(n, out, path, depth) {
			return nil
		}
	}
	return out
}

// mapping copies n's keys into out: its own keys first, then those that
// merge keys (<<: *base) bring in and that it does not set itself. As in
// YAML's merge type, an earlier merged mapping wins over a later one.
func (x *expander) mapping(n, out *yaml.Node, path string, depth int) bool {
	first := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			x.r.add(posOf(k), path, "a key must be a plain value, not %s", describe(k))
			continue
		}
		kp := join(path, k.Value)
		if c, bad := badRune(k.Value); bad {
			x.r.taint(posOf(k), kp, "the key holds %s", runeName(c))
		}
		if f, dup := first[k.Value]; dup {
			x.r.add(posOf(k), kp, "key given twice; it is also at line %d column %d", f.Line, f.Column)
			continue
		}
		first[k.Value] = k
		ek := &yaml.Node{Kind: yaml.ScalarNode, Tag: k.Tag, Style: k.Style, Value: k.Value, Line: k.Line, Column: k.Column}
		ev := x.expand(v, kp, depth+1)
		if ev == nil {
			return false
		}
		out.Content = append(out.Content, ek, ev)
	}
	for _, m := range merges {
		src := m
		for src.Kind == yaml.AliasNode {
			src = src.Alias
		}
		var maps []*yaml.Node
		switch src.Kind {
		case yaml.MappingNode:
			maps = []*yaml.Node{m}
		case yaml.SequenceNode:
			maps = src.Content
		}
		for _, mm := range maps {
			e := x.expand(mm, path, depth)
			if e == nil {
				return false
			}
			if e.Kind != yaml.MappingNode {
				x.r.add(posOf(mm), join(path, "<<"), "a merge key takes a mapping or a list of mappings, not %s", describe(e))
				continue
			}
			for i := 0; i+1 < len(e.Content); i += 2 {
				k := e.Content[i]
				if _, set := first[k.Value]; set {
					continue
				}
				first[k.Value] = k
				out.Content = append(out.Content, k, e.Content[i+1])
			}
		}
		if len(maps) == 0 {
			x.r.add(posOf(m), join(path, "<<"), "a merge key takes a mapping or a list of mappings, not %s", describe(src))
		}
	}
	return true
}
