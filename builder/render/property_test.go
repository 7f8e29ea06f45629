package render_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/internal/testenv"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// propBase turns every section on, so every string field reaches a file.
const propBase = `version: 1
name: prop
target: ubuntu-22.04
operator:
  name: bai
  shell: /bin/bash
  groups: [sudo, docker]
  password_hash: "$6$saltsalt$.XeWDrCjouuYgs/UGMlCRi7DbQGo.D1eElJrsOdTTiB3cMADnjs1koQGbOqnqfjNvuX4oBtad6mDPQUgJiwjZ1"
  ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ops@example"]
docker:
  enabled: true
  version: "5:24.0.7-1~ubuntu.22.04~jammy"
  repository: https://download.docker.com/linux
  daemon_json: {log-driver: json-file}
sysctl: {enabled: true, set: {net.core.somaxconn: "4096"}}
python:
  enabled: true
  mirror: https://mirror.example.com/pbs
  sha256: "0000000000000000000000000000000000000000000000000000000000000000"
  services: [agent]
hosts: {enabled: true, entries: [{ip: 10.20.30.20, names: [bai-n1], comment: agent}]}
storage:
  local: [scratch]
  nfs: [{name: data1, server: 10.20.30.5, export: /export/data1, options: rw}]
gpu: {enabled: true, driver: "535", cuda: "12-2", toolkit: true, toolkit_version: "1.14.0-1"}
images:
  pull: [cr.example.com/x:1]
  registries: [{registry: cr.example.com, username: robot, token: t0ken}]
nodes:
  - hostname: bai-n1
    role: agent
    ip: 10.20.30.20/24
    gateway: 10.20.30.1
    dns: [10.20.30.1]
    mac: "52:54:00:20:30:20"
    interface: ens3
    aliases: [n1]
`

// A field is a place in the site tree where a string goes. Path segments
// are map keys or "[0]"; key means the string replaces the map key.
type field struct {
	path []string
	key  bool
}

func (f field) String() string {
	s := strings.Join(f.path, ".")
	if f.key {
		s += ".<key>"
	}
	return s
}

// stringFields lists every string the site types hold, found by
// reflection so that a new field is covered without editing this test.
func stringFields() []field {
	var out []field
	var walk func(t reflect.Type, path []string)
	walk = func(t reflect.Type, path []string) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if tag == "-" || !sf.IsExported() {
				continue
			}
			p := path
			if tag != "" {
				p = append(slices.Clone(path), tag)
			}
			switch ft := sf.Type; {
			case sf.Anonymous && len(path) > 0:
				// A node's own settings take the same path through render
				// as the site's; spend the cases on the site's.
			case sf.Anonymous || tag == "" && ft.Kind() == reflect.Struct:
				walk(ft, path)
			case tag == "roles":
			case ft.Kind() == reflect.String:
				out = append(out, field{path: p})
			case ft.Kind() == reflect.Struct:
				walk(ft, p)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
				out = append(out, field{path: append(p, "[0]")})
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), append(p, "[0]"))
			case ft.Kind() == reflect.Map:
				out = append(out, field{path: p, key: true}, field{path: p})
			}
		}
	}
	walk(reflect.TypeOf(spec.Site{}), nil)
	return out
}

// set puts v at f in a site tree decoded from YAML.
func set(tree map[string]any, f field, v string) {
	var cur any = tree
	for i, seg := range f.path {
		last := i == len(f.path)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				switch {
				case f.key:
					c[seg] = map[string]any{v: "1"}
				case isMapField(c[seg]):
					m := c[seg].(map[string]any)
					for k := range m {
						m[k] = v
					}
				default:
					c[seg] = v
				}
				return
			}
			if c[seg] == nil {
				c[seg] = map[string]any{}
			}
			cur = c[seg]
		case []any:
			if last {
				c[0] = v
				return
			}
			cur = c[0]
		}
	}
}

func isMapField(x any) bool { _, ok := x.(map[string]any); return ok }

// Pieces that break YAML, shell or line-oriented files, mixed at random
// with random code points; never used alone as the whole test.
var nasty = []string{"\n", "\r", "\r\n", "\u0085", "\u2028", "\u2029", "\x00", "\x7f", "\u009b", "\x1b", "\t", " ", "'", `"`, `\`,
	"---", "...", "#", " #", ": ", "- ", "{", "}", "[", "]", "&a", "*a", "!!str ", "%", "@", "`", "|", ">", "no", "on", "null",
	"012", "0x1f", "1.50", "~", "\ufeff", "\ufffe", "$(id)", "${X}", `'\''`, `\n`, `\x41`, "\nchpasswd: {expire: false}\n",
	"\n  - path: /etc/cron.d/x\n", "é", "日本", "😀", "\U0010FFFF", "\u00a0", "\u200b"}

// Printable pieces that still mean something to YAML 1.1 or a shell.
var tame = []string{"'", `"`, `\`, "#", " #", ": ", "- ", "{", "}", "[", "]", "&a", "*a", "!!str ", "%", "@", "`", "|", ">",
	"no", "on", "null", "012", "0x1f", "1.50", "~", "$(id)", "${X}", `'\''`, `\n`, `\x41`, ",", "=", "é", "日本", "😀", "-", ".", "_", "0"}

// Plain scalars YAML 1.1 reads as bool, null, int or float.
var yaml11 = []string{"no", "yes", "on", "off", "y", "n", "true", "null", "012", "0x1f", "0o17", "1.50", "1e3", "1_000", "0b101", "190:20:30", ".inf", "2001-01-01", "~"}

func randRune(r *rand.Rand) rune {
	switch r.Intn(6) {
	case 0:
		return rune(r.Intn(0x20))
	case 1:
		return rune(0x7f + r.Intn(0x21))
	case 2:
		return rune(0x20 + r.Intn(0x5f))
	case 3:
		return rune(0xa0 + r.Intn(0xd800-0xa0))
	case 4:
		return rune(0xe000 + r.Intn(0x2000))
	default:
		return rune(0x10000 + r.Intn(0x100000))
	}
}

// mutate inserts random pieces into a valid value, so that values keep
// passing validation's patterns often enough to reach render.
func mutate(r *rand.Rand, base string) string {
	if r.Intn(6) == 0 { // a whole value YAML 1.1 reads as another type
		return yaml11[r.Intn(len(yaml11))]
	}
	rs := []rune(base)
	if r.Intn(5) == 0 {
		rs = nil
	}
	printable := r.Intn(2) == 0 // what validation lets through more often
	for n := 1 + r.Intn(3); n > 0; n-- {
		var piece []rune
		if printable {
			piece = []rune(tame[r.Intn(len(tame))])
		} else if r.Intn(2) == 0 {
			piece = []rune(nasty[r.Intn(len(nasty))])
		} else {
			for m := 1 + r.Intn(4); m > 0; m-- {
				piece = append(piece, randRune(r))
			}
		}
		at := r.Intn(len(rs) + 1)
		rs = append(rs[:at], append(piece, rs[at:]...)...)
	}
	return string(rs)
}

// baseValue is what f holds in the base site, for mutate to start from.
func baseValue(tree map[string]any, f field) string {
	var cur any = tree
	for _, seg := range f.path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[seg]
		case []any:
			cur = c[0]
		default:
			return ""
		}
	}
	switch c := cur.(type) {
	case string:
		return c
	case map[string]any:
		for k, v := range c {
			if f.key {
				return k
			}
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

type propCase struct {
	Field string `json:"field"`
	Value string `json:"value"`

	f     field
	files render.Files
}

type readBack struct {
	Error         string                           `json:"error"`
	Keys          []string                         `json:"keys"`
	Hostname      any                              `json:"hostname"`
	FinalMessage  any                              `json:"final_message"`
	Users         []map[string]any                 `json:"users"`
	WriteFiles    []struct{ Path, Content string } `json:"write_files"`
	MetaKeys      []string                         `json:"meta_keys"`
	LocalHostname any                              `json:"local_hostname"`
	NetKeys       []string                         `json:"net_keys"`
	Ethernets     map[string]any                   `json:"ethernets"`
	Env           map[string]map[string]string     `json:"env"`
}

// TestPropertyEncoding sets arbitrary Unicode strings into every string
// field that validation accepts, renders, and reads the files back with
// PyYAML (YAML 1.1, as cloud-init does) and bash. The structure never
// changes and every value comes back exactly as written. It runs the
// committed corpus and a bounded number of random cases; the seed is
// logged, and BAINODE_PROP_SEED / BAINODE_PROP_CASES replay or extend it.
func TestPropertyEncoding(t *testing.T) {
	// Debian's python3 has python3-yaml, the PyYAML cloud-init uses.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = testenv.Need(t, "python3")
	}
	if _, err := exec.Command(py, "-c", "import yaml").CombinedOutput(); err != nil {
		if testenv.CI() {
			t.Fatal("python3 has no yaml module (Debian: python3-yaml, a cloud-init dependency)")
		}
		t.Skip("python3 has no yaml module")
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("BAINODE_PROP_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	n := 600
	if s := os.Getenv("BAINODE_PROP_CASES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	t.Logf("seed %d, %d random cases (BAINODE_PROP_SEED, BAINODE_PROP_CASES)", seed, n)
	rng := rand.New(rand.NewSource(seed))

	var tree map[string]any
	if err := yaml.Unmarshal([]byte(propBase), &tree); err != nil {
		t.Fatal(err)
	}
	fields := stringFields()
	byName := map[string]field{}
	for _, f := range fields {
		byName[f.String()] = f
	}
	var cases []propCase
	for _, c := range loadCorpus(t) {
		f, ok := byName[c.Field]
		if !ok {
			t.Errorf("corpus: no field %s", c.Field)
			continue
		}
		c.f = f
		cases = append(cases, c)
	}
	for i := 0; i < n; i++ {
		f := fields[i%len(fields)]
		cases = append(cases, propCase{Field: f.String(), Value: mutate(rng, baseValue(tree, f)), f: f})
	}

	r := renderer(t)
	base := renderCase(t, r, tree, propCase{}, false)
	basePaths := writePaths(base.UserData)
	var rendered []propCase
	rejected, refused := map[string]int{}, 0
	for _, c := range cases {
		tr := deepCopy(tree).(map[string]any)
		set(tr, c.f, c.Value)
		src, err := yaml.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		// yaml.v3 writes a few strings it cannot read back (a lone "\n"
		// becomes an empty block scalar): the site file holds what it
		// reads as, so that is the value to expect.
		// Others it writes as YAML nobody can read: the loader must refuse
		// those.
		var back map[string]any
		if err := yaml.Unmarshal(src, &back); err != nil {
			if _, perr := spec.Parse("prop.yaml", src); perr == nil {
				t.Errorf("%s = %q: the site file is not YAML (%v), yet it loads", c.Field, c.Value, err)
			}
			rejected[c.Field]++
			continue
		}
		c.Value = baseValue(back, c.f)
		s, err := spec.Parse("prop.yaml", src)
		if err != nil {
			rejected[c.Field]++
			continue
		}
		files, err := r.Node(s, &s.Nodes[0])
		if err != nil {
			// Render may refuse (never half-write) only what it cannot
			// put in a line-oriented file.
			if !unwritable(c.Value) {
				t.Errorf("%s = %q: render refused a writable value: %v", c.Field, c.Value, err)
			}
			refused++
			continue
		}
		c.files = files
		rendered = append(rendered, c)
	}
	reached := map[string]bool{}
	for _, c := range rendered {
		reached[c.Field] = true
	}
	var never []string
	for _, f := range fields {
		if !reached[f.String()] {
			never = append(never, f.String())
		}
	}
	t.Logf("fields no accepted case reached this run: %q", never)
	t.Logf("%d cases: %d rendered, %d refused by render, %d rejected by validation", len(cases), len(rendered), refused, len(cases)-len(rendered)-refused)

	dir := t.TempDir()
	for i, c := range rendered {
		for name, b := range c.files.Map() {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d.%s", i, name)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(py, filepath.Join("testdata", "readback.py"), dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("readback.py: %v\n%s", err, stderr.Bytes())
	}
	var got map[string]readBack
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	keysTmpl, envVars := templateNames(t)
	for i, c := range rendered {
		rb, ok := got[fmt.Sprintf("%05d", i)]
		if !ok {
			t.Errorf("%s = %q: no read-back", c.Field, c.Value)
			continue
		}
		for _, p := range checkCase(c, rb, basePaths, keysTmpl, envVars) {
			t.Errorf("%s = %q: %s", c.Field, c.Value, p)
		}
	}
}

// unwritable is true for values that no line-oriented file can hold.
func unwritable(s string) bool {
	for _, r := range s {
		if r < 0x21 || r >= 0x7f && r <= 0xa0 || r == '#' || r == 0x2028 || r == 0x2029 || r > 0x7f {
			return true
		}
	}
	return false
}

func loadCorpus(t *testing.T) []propCase {
	f, err := os.Open(filepath.Join("testdata", "property", "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []propCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c propCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("corpus: %v", err)
		}
		out = append(out, c)
	}
	return out
}

func renderCase(t *testing.T, r *render.Renderer, tree map[string]any, _ propCase, _ bool) render.Files {
	t.Helper()
	src, _ := yaml.Marshal(tree)
	s, err := spec.Parse("prop.yaml", src)
	if err != nil {
		t.Fatalf("base site: %v", err)
	}
	f, err := r.Node(s, &s.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func deepCopy(x any) any {
	switch c := x.(type) {
	case map[string]any:
		m := make(map[string]any, len(c))
		for k, v := range c {
			m[k] = deepCopy(v)
		}
		return m
	case []any:
		l := make([]any, len(c))
		for i, v := range c {
			l[i] = deepCopy(v)
		}
		return l
	}
	return x
}

// writePaths are the write_files paths as the Go YAML parser reads them.
func writePaths(ud []byte) []string {
	var c struct {
		WriteFiles []struct{ Path string } `yaml:"write_files"`
	}
	yaml.Unmarshal(ud, &c)
	var ps []string
	for _, f := range c.WriteFiles {
		ps = append(ps, f.Path)
	}
	return ps
}

// templateNames are the top-level keys user-data.tmpl can write and the
// variables each env template sets: what a read-back may hold, no more.
func templateNames(t *testing.T) (keys map[string]bool, env map[string][]string) {
	keys, env = map[string]bool{}, map[string][]string{}
	b, err := fs.ReadFile(templates.FS, "cloud-init/user-data.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^([a-z_]+):`).FindAllSubmatch(b, -1) {
		keys[string(m[1])] = true
	}
	for _, name := range []string{"provision", "verify"} {
		b, err := fs.ReadFile(templates.FS, "cloud-init/"+name+".env.tmpl")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^([A-Z_0-9]+)=`).FindAllSubmatch(b, -1) {
			env["/etc/bainode/"+name+".env"] = append(env["/etc/bainode/"+name+".env"], string(m[1]))
		}
	}
	return keys, env
}

func checkCase(c propCase, rb readBack, basePaths []string, keys map[string]bool, envVars map[string][]string) []string {
	var bad []string
	badf := func(f string, a ...any) { bad = append(bad, fmt.Sprintf(f, a...)) }
	if rb.Error != "" {
		return []string{"PyYAML: " + rb.Error}
	}
	for _, k := range rb.Keys {
		if !keys[k] {
			badf("user-data has top-level key %q, which the template does not write", k)
		}
	}
	for _, k := range []string{"hostname", "users", "write_files", "runcmd", "bootcmd", "final_message", "manage_etc_hosts"} {
		if !slices.Contains(rb.Keys, k) {
			badf("user-data lost top-level key %q", k)
		}
	}
	if !slices.Equal(rb.MetaKeys, []string{"instance-id", "local-hostname"}) || !slices.Equal(rb.NetKeys, []string{"ethernets", "version"}) || len(rb.Ethernets) != 1 {
		badf("meta-data keys %q, network-config keys %q, %d ethernets", rb.MetaKeys, rb.NetKeys, len(rb.Ethernets))
	}
	var paths []string
	content := map[string]string{}
	for _, f := range rb.WriteFiles {
		paths = append(paths, f.Path)
		content[f.Path] = f.Content
	}
	if !slices.Equal(paths, basePaths) {
		badf("write_files paths %q, want %q", paths, basePaths)
	}
	for path, want := range envVars {
		env := rb.Env[path]
		if env["!error"] != "" {
			badf("%s: bash could not source it", path)
		}
		var names []string
		for k := range env {
			if !strings.HasPrefix(k, "BASH") && k != "_" && k != "PIPESTATUS" {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(names, w) {
			badf("%s sets %q, want %q", path, names, w)
		}
	}
	v := c.Value
	user := map[string]any{}
	if len(rb.Users) > 0 {
		user = rb.Users[0]
	}
	envIs := func(file, name string) {
		if got := rb.Env["/etc/bainode/"+file][name]; got != v {
			badf("%s %s = %q after bash sources it", file, name, got)
		}
	}
	has := func(path, s string) {
		if !strings.Contains(content[path], s) {
			badf("%s lacks %q:\n%s", path, s, content[path])
		}
	}
	switch c.Field {
	case "nodes.[0].hostname":
		if rb.Hostname != v || rb.LocalHostname != v || rb.FinalMessage != "bainode: "+v+" provisioned by cloud-init $VERSION in $UPTIME s" {
			badf("hostname %q, local-hostname %q, final_message %q", rb.Hostname, rb.LocalHostname, rb.FinalMessage)
		}
	case "operator.name":
		if user["name"] != v || user["primary_group"] != v {
			badf("users[0] %v", user)
		}
		envIs("provision.env", "BAI_USER")
		envIs("verify.env", "BAI_USER")
	case "operator.shell":
		if user["shell"] != v {
			badf("shell %q", user["shell"])
		}
		envIs("verify.env", "BAI_SHELL")
	case "operator.groups.[0]":
		if g, _ := user["groups"].([]any); len(g) == 0 || g[0] != v {
			badf("groups %v", user["groups"])
		}
	case "operator.password_hash":
		if user["passwd"] != v {
			badf("passwd %q", user["passwd"])
		}
	case "operator.ssh_authorized_keys.[0]":
		if k, _ := user["ssh_authorized_keys"].([]any); len(k) == 0 || k[0] != v {
			badf("ssh_authorized_keys %v", user["ssh_authorized_keys"])
		}
	case "docker.version":
		envIs("provision.env", "DOCKER_VERSION")
	case "gpu.toolkit_version":
		envIs("provision.env", "TOOLKIT_VERSION")
	case "python.sha256":
		envIs("provision.env", "PYTHON_SHA256")
	case "storage.local.[0]":
		envIs("provision.env", "VFROOT_LOCAL")
	case "images.pull.[0]":
		envIs("provision.env", "IMAGES")
	case "nodes.[0].interface":
		if _, ok := rb.Ethernets[v]; !ok {
			badf("ethernets %v", rb.Ethernets)
		}
	case "hosts.entries.[0].comment":
		has("/etc/bainode/hosts.block", "  # "+v+"\n")
	case "sysctl.set":
		has("/etc/sysctl.d/99-backendai.conf", "\nnet.core.somaxconn = "+v+"\n")
	case "images.registries.[0].registry", "images.registries.[0].username", "images.registries.[0].token":
		has("/etc/bainode/registry-auth", v)
	case "docker.daemon_json", "docker.daemon_json.<key>":
		var m map[string]any
		if err := json.Unmarshal([]byte(content["/etc/bainode/daemon.json"]), &m); err != nil {
			badf("daemon.json: %v", err)
		} else if _, ok := m[v]; !ok && !slices.Contains(mapValues(m), v) {
			badf("daemon.json %v lacks %q", m, v)
		}
	case "docker.repository":
		if got := rb.Env["/etc/bainode/provision.env"]["DOCKER_REPO"]; !strings.HasPrefix(got, v+"/") {
			badf("DOCKER_REPO = %q", got)
		}
	case "python.mirror":
		if got := rb.Env["/etc/bainode/provision.env"]["PYTHON_URL"]; !strings.HasPrefix(got, v+"/") {
			badf("PYTHON_URL = %q", got)
		}
	}
	if !utf8.ValidString(v) {
		badf("test bug: invalid UTF-8")
	}
	return bad
}

func mapValues(m map[string]any) []string {
	var out []string
	for _, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
