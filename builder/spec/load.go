package spec

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and validates the site file at path.
func Load(path string) (*Site, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One byte past the limit is enough to refuse a file that is too big.
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse reads and validates a site file's bytes; name is used in messages.
// It returns every problem at once as an *Error.
func Parse(name string, data []byte) (*Site, error) {
	r := &report{file: name}
	if !checkBytes(r, data) {
		return nil, r.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		yamlError(r, data, err)
		return nil, r.err()
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		yamlError(r, data, err)
		return nil, r.err()
	default:
		r.add(secondDoc(data, &next), "", "a second YAML document; a site file is one document (remove the '---')")
		return nil, r.err()
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		r.add(position{1, 1}, "", "the file is empty; 'bainode init' writes an example")
		return nil, r.err()
	}
	x := &expander{r: r}
	root := x.expand(doc.Content[0], "", 0)
	if root == nil {
		return nil, r.err()
	}
	if root.Kind != yaml.MappingNode {
		r.add(posOf(root), "", "want a mapping at the top of the site file, got %s", describe(root))
		return nil, r.err()
	}

	// Pass 1: the whole file, strictly, to find unknown keys and bad types
	// and to learn where every field is.
	site := &Site{File: name}
	l := &loader{r: r, site: site, root: root}
	whole := &decoder{r: r, origin: map[string]origin{}, work: &l.work}
	whole.decode(root, reflect.ValueOf(site).Elem(), "")
	l.pos = whole.origin
	l.checkHeader()

	// Pass 2: each node's effective settings, layer by layer.
	roleNodes := mapValue(root, "roles")
	nodeSeq := mapValue(root, "nodes")
	site.Settings = l.layer(Defaults(""), root, nil, "", nil).s
	used := map[string]bool{}
	for i := range site.Nodes {
		if l.work > maxWork {
			break
		}
		n := &site.Nodes[i]
		if n.Role == "" {
			n.Role = "all-in-one"
		}
		if n.Target == "" {
			n.Target = site.Target
		}
		var roleNode, self *yaml.Node
		if roleNodes != nil {
			roleNode = mapValue(roleNodes, n.Role)
		}
		if nodeSeq != nil && i < len(nodeSeq.Content) {
			self = nodeSeq.Content[i]
		}
		eff := l.layer(Defaults(n.Role), root, roleNode, "roles."+n.Role+".", self)
		if l.work > maxWork {
			break
		}
		eff.node = i
		l.checkSettings(&eff)
		n.Settings = eff.s
		used[n.Role] = true
	}
	// Settings no node uses are checked all the same: a mistake in them
	// must not wait until a node is added (or hide behind "nodes: []").
	for _, role := range Roles {
		if used[role] || l.work > maxWork {
			continue
		}
		var roleNode *yaml.Node
		if roleNodes != nil {
			roleNode = mapValue(roleNodes, role)
		}
		if roleNode == nil && len(site.Nodes) > 0 {
			continue
		}
		eff := l.layer(Defaults(role), root, roleNode, "roles."+role+".", nil)
		if l.work > maxWork {
			break
		}
		l.checkSettings(&eff)
	}
	if l.work > maxWork {
		return nil, r.err()
	}
	l.checkNodes()
	l.fillHosts()
	if err := r.err(); err != nil {
		return nil, err
	}
	site.Warnings = r.warnings()
	return site, nil
}

type loader struct {
	r    *report
	site *Site
	pos  map[string]origin // spec path -> position, from pass 1
	root *yaml.Node
	work int // values decoded so far, against maxWork
}

// effective is one node's settings and where each field was set.
type effective struct {
	s      Settings
	origin map[string]origin
	node   int // index in site.Nodes, or -1 for the site-wide layer
}

// layer decodes the settings keys of site, role and node mappings, in that
// order, over the defaults.
func (l *loader) layer(def Settings, site, role *yaml.Node, rolePrefix string, node *yaml.Node) effective {
	e := effective{s: def, origin: map[string]origin{}, node: -1}
	d := &decoder{r: l.r, origin: e.origin, work: &l.work}
	v := reflect.ValueOf(&e.s).Elem()
	apply := func(m *yaml.Node, prefix string) {
		if m == nil || m.Kind != yaml.MappingNode {
			return
		}
		d.prefix = prefix
		d.decode(settingsOnly(m), v, "")
	}
	if site != nil {
		apply(site, "")
	}
	if role != nil {
		apply(role, rolePrefix)
	}
	if node != nil {
		apply(node, fmt.Sprintf("nodes[%d].", l.nodeIndex(node)))
	}
	return e
}

func (l *loader) nodeIndex(n *yaml.Node) int {
	seq := mapValue(l.root, "nodes")
	for i, c := range seq.Content {
		if c == n {
			return i
		}
	}
	return -1
}

var settingsKeys = fieldsOf(reflect.TypeOf(Settings{}))

// settingsOnly keeps the keys of m that are settings, so a layer can be
// decoded into Settings without tripping over site or node keys.
func settingsOnly(m *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Line: m.Line, Column: m.Column}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if _, ok := settingsKeys[m.Content[i].Value]; ok {
			out.Content = append(out.Content, m.Content[i], m.Content[i+1])
		}
	}
	return out
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// at returns the position of a spec path from pass 1, falling back to the
// nearest parent that was written in the file.
func (l *loader) at(path string) position {
	for p := path; p != ""; p = parent(p) {
		if o, ok := l.pos[p]; ok {
			return o.pos
		}
	}
	return posOf(l.root)
}

var lastPart = regexp.MustCompile(`(\.[^.\[\]]+|\[\d+\])$`)

// parent strips the last part of a spec path: nodes[2].ip -> nodes[2] -> nodes -> "".
func parent(p string) string {
	q := lastPart.ReplaceAllString(p, "")
	if q == p {
		return ""
	}
	return q
}

// secondDoc is where a second document starts: its '---' line.
func secondDoc(data []byte, n *yaml.Node) position {
	lines := strings.SplitAfter(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "---") && i+1 <= max(n.Line, 1) {
			return position{i + 1, 1}
		}
	}
	return position{max(n.Line, 1), max(n.Column, 1)}
}
