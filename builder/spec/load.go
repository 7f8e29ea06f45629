package spec

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Load reads and validates the site file at path.
func Load(path string) (*Site, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse reads and validates a site file's bytes; name is used in messages.
// It returns every problem at once as an *Error.
func Parse(name string, data []byte) (*Site, error) {
	r := &report{file: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		r.add(yamlErrorPos(err), "", "%s", yamlErrorMsg(err))
		return nil, r.err()
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		r.add(position{1, 1}, "", "the file is empty; 'bainode init' writes an example")
		return nil, r.err()
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		r.add(posOf(root), "", "want a mapping at the top of the site file, got %s", describe(root))
		return nil, r.err()
	}

	// Pass 1: the whole file, strictly, to find unknown keys and bad types
	// and to learn where every field is.
	site := &Site{File: name}
	whole := &decoder{r: r, origin: map[string]origin{}}
	whole.decode(root, reflect.ValueOf(site).Elem(), "")
	l := &loader{r: r, site: site, pos: whole.origin, root: root}
	l.checkHeader()

	// Pass 2: each node's effective settings, layer by layer.
	roleNodes := mapValue(root, "roles")
	nodeSeq := mapValue(root, "nodes")
	site.Settings = l.layer(Defaults(""), root, nil, "", nil).s
	for i := range site.Nodes {
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
		eff.node = i
		l.checkSettings(&eff)
		n.Settings = eff.s
	}
	l.checkNodes()
	l.fillHosts()
	if err := r.err(); err != nil {
		return nil, err
	}
	return site, nil
}

type loader struct {
	r    *report
	site *Site
	pos  map[string]origin // spec path -> position, from pass 1
	root *yaml.Node
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
	d := &decoder{r: l.r, origin: e.origin}
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

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlErrorPos(err error) position {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return position{n, 1}
	}
	return position{}
}

func yamlErrorMsg(err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return "not valid YAML: " + m[2]
	}
	return "not valid YAML: " + err.Error()
}
