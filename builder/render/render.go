// Package render turns a validated site into cloud-init files for each node:
// user-data, meta-data, network-config and vendor-data. Templates and the
// files put on nodes are data (packages templates and overlays); this
// package only fills them in.
package render

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"slices"

	"sort"
	"strings"
	"sync"
	"testing/fstest"
	"text/template"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/overlays"
	"github.com/lablup/bainode/templates"
)

// The guide's /etc/hosts markers.
const (
	HostsBegin = "##### BEGIN for Backend.AI services #####"
	HostsEnd   = "##### END for Backend.AI services #####"
)

// UserDataLimit is the AWS EC2 user-data limit; larger user-data gets a warning.
const UserDataLimit = 16 * 1024

// Key fingerprints the provisioning script checks apt keys against.
var keyFingerprints = struct{ Docker, NVIDIA, CUDA string }{
	Docker: fetch.DockerFingerprint,
	NVIDIA: fetch.NVIDIAFingerprint,
	CUDA:   plan.CUDAFingerprint,
}

// Files are one node's cloud-init files.
type Files struct {
	UserData      []byte
	MetaData      []byte
	NetworkConfig []byte
	VendorData    []byte
	// Secret is true when user-data holds a password hash, SSH keys or
	// registry tokens, so it must be written 0600.
	Secret bool
	// Warnings are things the operator should know, such as size limits.
	Warnings []string
	// Gzipped is true when UserData is gzipped (seed.gzip). GzipSize is the
	// size UserData would have with seed.gzip, when it is not gzipped and
	// over the EC2 limit (else 0): the number a size error can promise.
	Gzipped  bool
	GzipSize int
	// LeanSize is the gzipped size without the on-node verifier
	// (seed.verifier: false), when even the gzipped file is over the EC2
	// limit and the verifier is on (else 0).
	LeanSize int
	// Verifier is true when user-data carries the verifier.
	Verifier bool
}

// FS returns the files as a flat fs.FS, ready for seed.WriteISO.
func (f Files) FS() fs.FS {
	m := fstest.MapFS{}
	for name, b := range f.Map() {
		m[name] = &fstest.MapFile{Data: b, Mode: 0o600}
	}
	return m
}

// Map returns the files by their NoCloud names.
func (f Files) Map() map[string][]byte {
	return map[string][]byte{
		"user-data":      f.UserData,
		"meta-data":      f.MetaData,
		"network-config": f.NetworkConfig,
		"vendor-data":    f.VendorData,
	}
}

// Names are the NoCloud file names in a stable order.
var Names = []string{"meta-data", "network-config", "user-data", "vendor-data"}

// Renderer renders nodes. It is safe for concurrent use.
type Renderer struct {
	tmpl     *template.Template
	targets  map[string]Target
	overlays fs.FS
	version  string
	statics  map[string]static // by overlay path, computed once

	mu       sync.Mutex
	seed     maphash.Seed
	hosts    map[uint64]hostsEntry // hosts block by a hash of its entries
	variants map[string]static     // sectioned scripts by overlay path and kept sections
}

// Options configure a Renderer; zero values use the embedded data.
type Options struct {
	Templates fs.FS  // default templates.FS
	Overlays  fs.FS  // default overlays.FS
	Version   string // bainode's version, stamped in user-data

	keepComments bool // for the size report: scripts as in overlays/
}

// New parses the templates and target data.
func New(o Options) (*Renderer, error) {
	if o.Templates == nil {
		o.Templates = templates.FS
	}
	if o.Overlays == nil {
		o.Overlays = overlays.FS
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	t, err := template.New("").Option("missingkey=error").Funcs(funcs).ParseFS(o.Templates, "cloud-init/*.tmpl")
	if err != nil {
		return nil, err
	}
	targets, err := LoadTargets(o.Templates)
	if err != nil {
		return nil, err
	}
	for _, name := range spec.Targets {
		if _, ok := targets[name]; !ok {
			return nil, fmt.Errorf("targets.yaml has no entry for target %s", name)
		}
	}
	r := &Renderer{tmpl: t, targets: targets, overlays: o.Overlays, version: o.Version, statics: map[string]static{}, hosts: map[uint64]hostsEntry{}, seed: maphash.MakeSeed()}
	for _, f := range staticFiles {
		b, err := fs.ReadFile(o.Overlays, f.src)
		if err != nil {
			return nil, fmt.Errorf("overlay %s: %w", f.src, err)
		}
		secs, err := parseSections("overlays/"+f.src, b)
		if err != nil {
			return nil, err
		}
		if len(secs) > 0 && f.env == "" {
			return nil, fmt.Errorf("overlays/%s has sections but no env file to decide them", f.src)
		}
		st := static{raw: b, secs: secs, strip: f.strip && !o.keepComments}
		if len(secs) == 0 {
			st = st.final(b)
		}
		r.statics[f.src] = st
	}
	r.variants = map[string]static{}
	return r, nil
}

// static is an overlay file ready for write_files, in both encodings. A
// script with sections keeps its raw text and is finished per node.
type static struct {
	text, gzB64 string
	raw         []byte
	secs        []section
	strip       bool
}

func (st static) final(b []byte) static {
	if st.strip {
		b = stripShell(b)
	}
	st.text, st.gzB64 = string(b), gzB64(b)
	return st
}

// forNode is the static with the sections the node's env file turns off
// cut out; variants are few (one per set of parts), so they are cached.
func (r *Renderer) forNode(f staticFile, files []writeFile) (static, error) {
	st := r.statics[f.src]
	if len(st.secs) == 0 {
		return st, nil
	}
	var env map[string]string
	for _, w := range files {
		if w.Path == f.env {
			env = envValues(w.Content)
		}
	}
	if env == nil {
		return static{}, fmt.Errorf("overlays/%s: no %s rendered to decide its sections", f.src, f.env)
	}
	b, err := cutSections("overlays/"+f.src, st.raw, st.secs, env)
	if err != nil {
		return static{}, err
	}
	key := f.src + "\x00" + string(b)
	r.mu.Lock()
	v, ok := r.variants[key]
	r.mu.Unlock()
	if ok {
		return v, nil
	}
	v = st.final(b)
	r.mu.Lock()
	if len(r.variants) >= 64 {
		clear(r.variants)
	}
	r.variants[key] = v
	r.mu.Unlock()
	return v, nil
}

// staticFile is an overlay file installed on nodes as is.
type staticFile struct {
	src, dst, mode string
	when           func(*view) bool
	strip          bool   // a bash script: comments go at render time
	env            string // the env file whose values decide its sections
}

var always = func(*view) bool { return true }

var gpuOn = func(v *view) bool { return v.S.GPU.Enabled }

var verifierOn = func(v *view) bool { return v.Verifier }

var staticFiles = []staticFile{
	{"provision/bainode-provision", "/usr/local/sbin/bainode-provision", "0755", always, true, provisionEnv},
	{"verify/bainode-verify", "/usr/local/lib/bainode/bainode-verify", "0755", verifierOn, true, verifyEnv},
	{"verify/bainode-verify-report", "/usr/local/lib/bainode/bainode-verify-report", "0755", verifierOn, true, ""},
	{"systemd/bainode-verify.service", "/etc/systemd/system/bainode-verify.service", "0644", verifierOn, false, ""},
	{"provision/bainode-gpu-gate", "/usr/local/lib/bainode/bainode-gpu-gate", "0755", gpuOn, true, ""},
	{"systemd/bainode-gpu-gate.service", "/etc/systemd/system/bainode-gpu-gate.service", "0644", gpuOn, false, ""},
	{"systemd/bainode-gpu-reboot.service", "/etc/systemd/system/bainode-gpu-reboot.service", "0644", gpuOn, false, ""},
	// apt keys are for the online repositories; a payload's repository is
	// the only source offline.
	{"keys/docker.asc", "/etc/apt/keyrings/docker.asc", "0644", func(v *view) bool { return v.S.Docker.Enabled && v.S.Artifacts != spec.ArtifactsPayload }, false, ""},
	{"keys/nvidia-container-toolkit.asc", "/etc/apt/keyrings/nvidia-container-toolkit.asc", "0644", func(v *view) bool { return v.Toolkit && v.S.Artifacts != spec.ArtifactsPayload }, false, ""},
}

const (
	provisionEnv = "/etc/bainode/provision.env"
	verifyEnv    = "/etc/bainode/verify.env"
)

// VerifyEnv is the verifier's expectations for n: the verify.env that Node
// writes on it, for bainode verify on a host set up without it.
func (r *Renderer) VerifyEnv(site *spec.Site, n *spec.Node) ([]byte, error) {
	v, err := r.view(site, n)
	if err != nil {
		return nil, err
	}
	b, err := r.exec("verify.env.tmpl", v)
	return []byte(strings.TrimLeft(string(b), "\n")), err
}

// ProvisionEnv is the provisioning script's settings for n: the
// provision.env that Node writes on it.
func (r *Renderer) ProvisionEnv(site *spec.Site, n *spec.Node) ([]byte, error) {
	v, err := r.view(site, n)
	if err != nil {
		return nil, err
	}
	b, err := r.exec("provision.env.tmpl", v)
	return []byte(strings.TrimLeft(string(b), "\n")), err
}

// Node renders one node of a validated site.
func (r *Renderer) Node(site *spec.Site, n *spec.Node) (Files, error) {
	v, err := r.view(site, n)
	if err != nil {
		return Files{}, err
	}
	var f Files
	// write_files entries, in a fixed order.
	add := func(dst, mode, tmpl string) error {
		exec := r.exec
		if tmpl == "hosts.block.tmpl" {
			exec = r.hostsBlock
		}
		b, err := exec(tmpl, v)
		if err != nil {
			return err
		}
		v.Files = append(v.Files, writeFile{Path: dst, Mode: mode, Content: strings.TrimLeft(string(b), "\n")})
		return nil
	}
	steps := []struct {
		on              bool
		dst, mode, tmpl string
	}{
		{true, "/etc/security/limits.d/99-backendai.conf", "0644", "limits.conf.tmpl"},
		{v.S.Limits.Systemd, "/etc/systemd/system.conf.d/99-backendai.conf", "0644", "systemd-limits.conf.tmpl"},
		{v.S.Limits.Systemd, "/etc/systemd/user.conf.d/99-backendai.conf", "0644", "systemd-limits.conf.tmpl"},
		{v.S.Sysctl.Enabled, "/etc/sysctl.d/99-backendai.conf", "0644", "sysctl.conf.tmpl"},
		{v.HostsOn, "/etc/bainode/hosts.block", "0644", "hosts.block.tmpl"},
		{len(v.S.Storage.NFS) > 0, "/etc/bainode/fstab", "0644", "fstab.tmpl"},
		{true, provisionEnv, "0644", "provision.env.tmpl"},
		{true, verifyEnv, "0644", "verify.env.tmpl"},
	}
	for _, s := range steps {
		if s.on {
			if err := add(s.dst, s.mode, s.tmpl); err != nil {
				return Files{}, err
			}
		}
	}
	if v.S.Docker.Enabled && len(v.S.Docker.DaemonJSON) > 0 {
		b, err := json.MarshalIndent(v.S.Docker.DaemonJSON, "", "  ")
		if err != nil {
			return Files{}, fmt.Errorf("docker.daemon_json: %w", err)
		}
		v.Files = append(v.Files, writeFile{Path: "/etc/bainode/daemon.json", Mode: "0644", Content: string(b) + "\n"})
	}
	if regs := v.S.Images.Registries; len(regs) > 0 {
		var b strings.Builder
		for i, ra := range regs {
			// The script reads each line with `read -r reg user token`: the
			// token is the rest of the line, so only blanks and control
			// characters could split it ('#' and non-ASCII are fine, as
			// validation allows). Its error never quotes it.
			_, e1 := word(ra.Registry)
			_, e2 := word(ra.Username)
			if e1 != nil || e2 != nil || ra.Token == "" || strings.ContainsFunc(ra.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return Files{}, fmt.Errorf("images.registries[%d]: a registry, user name or token is empty or holds a blank or a control character", i)
			}
			fmt.Fprintf(&b, "%s %s %s\n", ra.Registry, ra.Username, ra.Token)
		}
		v.Files = append(v.Files, writeFile{Path: "/etc/bainode/registry-auth", Mode: "0600", Content: b.String()})
		f.Secret = true
	}
	for _, s := range staticFiles {
		if s.when(v) {
			st, err := r.forNode(s, v.Files)
			if err != nil {
				return Files{}, err
			}
			if site.Seed.Gzip {
				// gzip over the whole text beats gzip per file plus base64,
				// which gzip cannot shrink again.
				v.Files = append(v.Files, writeFile{Path: s.dst, Mode: s.mode, Content: st.text})
			} else {
				v.Files = append(v.Files, writeFile{Path: s.dst, Mode: s.mode, Encoded: st.gzB64})
			}
		}
	}
	if f.UserData, err = r.exec("user-data.tmpl", v); err != nil {
		return Files{}, err
	}
	if f.NetworkConfig, err = r.exec("network-config.tmpl", v); err != nil {
		return Files{}, err
	}
	// The instance-id follows the content, so a changed config is a new
	// instance and cloud-init runs its per-instance modules again.
	h := sha256.New()
	h.Write(f.UserData)
	h.Write([]byte{0})
	h.Write(f.NetworkConfig)
	v.InstanceID = "bainode-" + n.Hostname + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	if f.MetaData, err = r.exec("meta-data.tmpl", v); err != nil {
		return Files{}, err
	}
	f.VendorData = []byte{}
	f.Secret = f.Secret || v.Op.PasswordHash != "" || len(v.Op.SSHAuthorizedKeys) > 0
	f.Gzipped = site.Seed.Gzip
	f.Verifier = v.Verifier
	if f.Gzipped {
		f.UserData = gz(f.UserData)
	} else if len(f.UserData) > UserDataLimit {
		// seed.gzip writes files as text, which gzips differently.
		z := *site
		z.Seed.Gzip = true
		g, err := r.Node(&z, n)
		if err != nil {
			return Files{}, err
		}
		f.GzipSize = len(g.UserData)
	}
	over := f.GzipSize > UserDataLimit || f.Gzipped && len(f.UserData) > UserDataLimit
	if over && site.Seed.OnNodeVerifier() {
		// What seed.verifier: false would give, for the advice.
		z := *site
		z.Seed.Gzip, z.Seed.Verifier = true, new(bool)
		g, err := r.Node(&z, n)
		if err != nil {
			return Files{}, err
		}
		f.LeanSize = len(g.UserData)
	}
	if w := SizeWarning(n.Hostname, f); w != "" {
		f.Warnings = append(f.Warnings, w)
	}
	return f, nil
}

// SizeWarning is EC2's Fit as a warning: render does not know where
// user-data goes (`--cloud ec2` makes it an error).
func SizeWarning(host string, f Files) string {
	if err := Clouds["ec2"].Fit(host, f); err != nil {
		return err.Error()
	}
	return ""
}

// hostsBlock renders the /etc/hosts block once per distinct list of
// entries: in a large site every node carries the same block of every node,
// and rendering it for each node made seeding a site quadratic.
func (r *Renderer) hostsBlock(name string, v *view) ([]byte, error) {
	entries := v.S.Hosts.Entries
	var h maphash.Hash
	h.SetSeed(r.seed)
	for _, e := range entries {
		h.WriteString(e.IP)
		for _, n := range e.Names {
			h.WriteByte(0)
			h.WriteString(n)
		}
		h.WriteByte(1)
		h.WriteString(e.Comment)
		h.WriteByte(2)
	}
	key := h.Sum64()
	r.mu.Lock()
	c, ok := r.hosts[key]
	r.mu.Unlock()
	// The hash only finds the candidate; equal entries make it a hit.
	if ok && slices.EqualFunc(c.entries, entries, sameHostEntry) {
		return c.block, nil
	}
	b, err := r.exec(name, v)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.hosts) >= 64 { // a long-lived server sees many sites: stay small
		clear(r.hosts)
	}
	r.hosts[key] = hostsEntry{slices.Clone(entries), b}
	r.mu.Unlock()
	return b, nil
}

type hostsEntry struct {
	entries []spec.HostEntry
	block   []byte
}

func sameHostEntry(a, b spec.HostEntry) bool {
	return a.IP == b.IP && a.Comment == b.Comment && slices.Equal(a.Names, b.Names)
}

func (r *Renderer) exec(name string, v *view) ([]byte, error) {
	var b bytes.Buffer
	if err := r.tmpl.ExecuteTemplate(&b, name, v); err != nil {
		// A refused value is the site's problem: say which file, not
		// which template action.
		if ee := (*EncodeError)(nil); errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %s: %w", v.Node.Hostname, strings.TrimSuffix(name, ".tmpl"), ee)
		}
		return nil, err
	}
	return b.Bytes(), nil
}

// writeFile is one write_files entry.
type writeFile struct {
	Path, Mode, Content, Encoded string
}

var funcs = template.FuncMap{
	// quote writes a YAML double-quoted scalar; see yamlStr.
	"quote": func(s string) (string, error) { q, err := yamlStr(s); return q, refuse(err) },
	// text writes a multi-line file as one double-quoted YAML scalar.
	"text": func(n int, s string) (string, error) { q, err := yamlText(n, s); return q, refuse(err) },
	// flow writes a YAML flow list of quoted strings.
	"flow": func(ss []string) (string, error) {
		q := make([]string, len(ss))
		for i, s := range ss {
			var err error
			if q[i], err = yamlStr(s); err != nil {
				return "", refuse(err)
			}
		}
		return "[" + strings.Join(q, ", ") + "]", nil
	},
	"join": strings.Join,
	// useraddGroups is " -G 'a,b'" for the supplementary groups, or "".
	"useraddGroups": func(groups []string, primary string) (string, error) {
		var g []string
		for _, x := range groups {
			if x != primary {
				g = append(g, x)
			}
		}
		if len(g) == 0 {
			return "", nil
		}
		q, err := shStr(strings.Join(g, ","))
		return " -G " + q, refuse(err)
	},
	// sh single-quotes a value for a shell-sourced env file.
	"sh": func(s string) (string, error) { q, err := shStr(s); return q, refuse(err) },
	// word and line check fields of line-oriented files (hosts, fstab, sysctl).
	"word": func(s string) (string, error) { q, err := word(s); return q, refuse(err) },
	"words": func(ss []string) (string, error) {
		for _, s := range ss {
			if _, err := word(s); err != nil {
				return "", refuse(err)
			}
		}
		return strings.Join(ss, " "), nil
	},
	"line": func(s string) (string, error) { q, err := lineText(s); return q, refuse(err) },
	"bit": func(b bool) int {
		if b {
			return 1
		}
		return 0
	},
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// gzB64 is write_files' gz+b64 encoding: it keeps scripts well inside
// user-data size limits. The gzip header has no time, so it is reproducible.
func gzB64(b []byte) string { return base64.StdEncoding.EncodeToString(gz(b)) }

// sortedKeys is used where maps feed output, so output never depends on map order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
