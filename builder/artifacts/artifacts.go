// Package artifacts turns a site's settings into the files bainode fetch
// puts in its cache for an air-gapped install, under the names
// builder/payload looks them up by: the python-build-standalone tarball by
// its asset name, container images by payload.ImageArchiveName(ref), the
// .debs of Docker's and NVIDIA's repositories through the lock, and
// optionally the Ubuntu cloud image a node boots from.
//
// What is fetched for which setting is the tables below (aptRepos,
// fileRules, imageRule); the per-target facts (codename, Docker's path) come
// from templates/targets.yaml.
package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// Kinds of Request, as recorded in the lock (fetch.Artifact.Kind).
const (
	KindPython     = "python"
	KindCloudImage = "cloud-image"
	KindDeb        = "deb"
	KindImage      = "image"
)

// Request is one artifact to fetch and who needs it.
type Request struct {
	// Artifact is the file: Name is its cache name, URL its upstream origin
	// (docker://REF for an image), SHA256 set when already known.
	Artifact fetch.Artifact
	// Image is set for a container image, which PullImage fetches.
	Image *Image
	// Nodes are the host names that need it; Field the setting that asks
	// for it ("python", "docker", "gpu.toolkit", "images.pull[2]", ...).
	Nodes []string
	Field string
}

// Image is a container image to pull.
type Image struct {
	Ref         string
	Platform    string // "linux/amd64"
	Credentials []fetch.RegistryCredential
}

// Where names the request's nodes and field, for messages.
func (r Request) Where() string {
	if len(r.Nodes) == 0 {
		return r.Field
	}
	return strings.Join(r.Nodes, ", ") + ": " + r.Field
}

// Key names for Options.Keys.
const (
	KeyDocker     = "docker"
	KeyNVIDIA     = "nvidia"
	KeyCloudImage = "cloud-image"
)

// Options tune ForSite.
type Options struct {
	// Context bounds the index downloads (SHA256SUMS, InRelease, Packages);
	// nil means context.Background().
	Context context.Context
	// Fetch is used for the index downloads: Mirrors, Client, Retries.
	Fetch fetch.Options
	// CloudImage adds the Ubuntu cloud image of each ubuntu node's target.
	CloudImage bool
	// Arch is the nodes' Debian architecture; default amd64.
	Arch string
	// Installed is what the nodes' image already has (fetch.ParseManifest
	// of an Ubuntu cloud image's .manifest): those packages are left out.
	Installed fetch.Installed
	// Keys replace the embedded trusted keys (KeyDocker, KeyNVIDIA,
	// KeyCloudImage): for tests and for private mirrors that re-sign.
	Keys map[string]openpgp.EntityList
	// Warn gets what is worth knowing but not an error; nil drops it.
	Warn func(msg string)
}

func (o *Options) defaults() {
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
}

// target is what ForSite needs of templates/targets.yaml.
type target struct {
	Name       string `yaml:"-"`
	Family     string `yaml:"family"`
	Codename   string `yaml:"codename"`
	DockerPath string `yaml:"docker_path"`
}

func loadTargets() (map[string]target, error) {
	b, err := fs.ReadFile(templates.FS, "targets.yaml")
	if err != nil {
		return nil, err
	}
	var m map[string]target
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("targets.yaml: %w", err)
	}
	for k, t := range m {
		t.Name = k
		m[k] = t
	}
	return m, nil
}

// node is one node as the rules see it.
type node struct {
	*spec.Node
	t    target
	arch string
}

// ---- the mapping -------------------------------------------------------

// aptRepo is an apt repository the nodes install from, when they do, and
// which packages they install from it (as bainode-provision asks apt for
// them).
type aptRepo struct {
	field      string // the setting that turns it on, for messages
	key        string // Options.Keys name
	trusted    fetch.TrustedKey
	when       func(s *spec.Settings) bool
	uri        func(n node) string
	suite      func(n node) string // "/" for a flat repository
	components []string
	packages   []aptPackage
}

// aptPackage is one requested package; pin, if set, gives the version
// setting ("" for none) and its name.
type aptPackage struct {
	name     string
	when     func(s *spec.Settings) bool
	pin      func(s *spec.Settings) string
	pinField string
}

func dockerVersion(s *spec.Settings) string  { return s.Docker.Version }
func toolkitVersion(s *spec.Settings) string { return s.GPU.ToolkitVersion }
func toolkitPinned(s *spec.Settings) bool    { return s.GPU.ToolkitVersion != "" }

// NVIDIAToolkitRepo is the NVIDIA container toolkit's apt repository, one
// flat repository per architecture (render's NVIDIA_TOOLKIT_REPO).
const NVIDIAToolkitRepo = "https://nvidia.github.io/libnvidia-container/stable/deb"

var aptRepos = []aptRepo{
	{
		field: "docker", key: KeyDocker, trusted: fetch.DockerKey,
		when:       func(s *spec.Settings) bool { return s.Docker.Enabled },
		uri:        func(n node) string { return strings.TrimSuffix(n.Docker.Repository, "/") + "/" + n.t.DockerPath },
		suite:      func(n node) string { return n.t.Codename },
		components: []string{"stable"},
		packages: []aptPackage{
			{name: "containerd.io"},
			{name: "docker-buildx-plugin"},
			{name: "docker-ce", pin: dockerVersion, pinField: "docker.version"},
			{name: "docker-ce-cli", pin: dockerVersion, pinField: "docker.version"},
			{name: "docker-compose-plugin", when: func(s *spec.Settings) bool { return s.Docker.Compose }},
		},
	},
	{
		field: "gpu.toolkit", key: KeyNVIDIA, trusted: fetch.NVIDIAKey,
		when:  func(s *spec.Settings) bool { return s.GPU.Enabled && s.GPU.Toolkit },
		uri:   func(n node) string { return NVIDIAToolkitRepo + "/" + n.arch },
		suite: func(node) string { return "/" },
		packages: []aptPackage{
			{name: "nvidia-container-toolkit", pin: toolkitVersion, pinField: "gpu.toolkit_version"},
			{name: "nvidia-container-toolkit-base", when: toolkitPinned, pin: toolkitVersion, pinField: "gpu.toolkit_version"},
			{name: "libnvidia-container-tools", when: toolkitPinned, pin: toolkitVersion, pinField: "gpu.toolkit_version"},
			{name: "libnvidia-container1", when: toolkitPinned, pin: toolkitVersion, pinField: "gpu.toolkit_version"},
		},
	},
}

// fileRule is a file a node needs, found in a directory whose SHA256SUMS
// lists it.
type fileRule struct {
	field string
	kind  string
	// file returns the directory, the file name, a sha256 pin ("" for none),
	// the version, and whether the node needs it at all.
	file func(n node, o *Options) (dir, name, pin, version string, ok bool)
	// key names the keyring SHA256SUMS.gpg must verify with; "" for an
	// unsigned SHA256SUMS (the lock pins its sums from then on).
	key     string
	trusted fetch.TrustedKey
}

// UbuntuCloudImages is where Ubuntu's cloud images are published.
const UbuntuCloudImages = "https://cloud-images.ubuntu.com"

var fileRules = []fileRule{
	{
		field: "python", kind: KindPython,
		file: func(n node, _ *Options) (string, string, string, string, bool) {
			p := n.Python
			return strings.TrimSuffix(p.Mirror, "/") + "/" + p.Release, payload.PythonAsset(p), p.SHA256,
				p.Version + "+" + p.Release, p.Enabled
		},
	},
	{
		field: "target (--cloud-image)", kind: KindCloudImage, key: KeyCloudImage, trusted: fetch.UbuntuCloudImageKey,
		file: func(n node, o *Options) (string, string, string, string, bool) {
			if !o.CloudImage || n.t.Family != "ubuntu" {
				return "", "", "", "", false
			}
			return UbuntuCloudImages + "/" + n.t.Codename + "/current",
				n.t.Codename + "-server-cloudimg-" + n.arch + ".img", "", "", true
		},
	},
}

// imageRule: every images.pull reference, cached as payload looks it up.
func imageRequests(n node) []Request {
	var creds []fetch.RegistryCredential
	for _, r := range n.Images.Registries {
		creds = append(creds, fetch.RegistryCredential{Registry: r.Registry, Username: r.Username, Password: r.Token})
	}
	var out []Request
	for i, ref := range n.Images.Pull {
		out = append(out, Request{
			Artifact: fetch.Artifact{Name: payload.ImageArchiveName(ref), URL: fetch.ImageURLScheme + ref, Kind: KindImage},
			Image:    &Image{Ref: ref, Platform: "linux/" + n.arch, Credentials: creds},
			Nodes:    []string{n.Hostname},
			Field:    fmt.Sprintf("images.pull[%d]", i),
		})
	}
	return out
}

// ---- ForSite ------------------------------------------------------------

// ForSite lists what nodes (all of the site's when nil) need fetched for
// their target: their Python, the .debs of the apt repositories their
// settings turn on (resolved with dependencies from the signed indexes),
// their images, and with o.CloudImage their Ubuntu cloud image. It reads
// the index files (SHA256SUMS, InRelease, Packages) from the network
// through o.Fetch's mirrors; every request but the images comes back
// pinned. Requests are sorted by kind and name; one needed by several nodes
// is listed once. Errors name the node and the setting.
func ForSite(site *spec.Site, nodes []*spec.Node, o Options) ([]Request, error) {
	o.defaults()
	if nodes == nil && site != nil {
		for i := range site.Nodes {
			nodes = append(nodes, &site.Nodes[i])
		}
	}
	targets, err := loadTargets()
	if err != nil {
		return nil, err
	}
	b := &builder{o: &o, byName: map[string]*Request{}, sums: map[string]fetch.Sums{}, pkgs: map[string][]fetch.AptPackage{}, keys: map[string]openpgp.EntityList{}}
	var ns []node
	for _, n := range nodes {
		t, ok := targets[n.Target]
		if !ok {
			b.fail(fmt.Errorf("%s: target: no data for %q in targets.yaml", n.Hostname, n.Target))
			continue
		}
		ns = append(ns, node{Node: n, t: t, arch: o.Arch})
	}
	for _, rule := range fileRules {
		for _, n := range ns {
			b.file(rule, n)
		}
	}
	b.apt(ns)
	for _, n := range ns {
		for _, r := range imageRequests(n) {
			b.add(r)
		}
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	var out []Request
	for _, r := range b.byName {
		sort.Strings(r.Nodes)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Artifact.Kind != out[j].Artifact.Kind {
			return out[i].Artifact.Kind < out[j].Artifact.Kind
		}
		return out[i].Artifact.Name < out[j].Artifact.Name
	})
	return out, nil
}

type builder struct {
	o      *Options
	byName map[string]*Request
	sums   map[string]fetch.Sums         // SHA256SUMS by directory
	pkgs   map[string][]fetch.AptPackage // Packages by source
	keys   map[string]openpgp.EntityList
	failed map[string]error // index fetches that failed, reported once per node
	errs   []error
}

func (b *builder) fail(err error) { b.errs = append(b.errs, err) }

// add merges r into the requests by cache name.
func (b *builder) add(r Request) {
	old, ok := b.byName[r.Artifact.Name]
	if !ok {
		b.byName[r.Artifact.Name] = &r
		return
	}
	if old.Artifact.URL != r.Artifact.URL || old.Artifact.SHA256 != r.Artifact.SHA256 {
		b.fail(fmt.Errorf("%s: %s would be %s (sha256 %s), but %s needs %s (sha256 %s)", r.Where(), r.Artifact.Name,
			r.Artifact.URL, orNone(r.Artifact.SHA256), old.Where(), old.Artifact.URL, orNone(old.Artifact.SHA256)))
		return
	}
	for _, n := range r.Nodes {
		if !slices.Contains(old.Nodes, n) {
			old.Nodes = append(old.Nodes, n)
		}
	}
	if old.Image != nil && r.Image != nil {
		for _, c := range r.Image.Credentials {
			if !slices.ContainsFunc(old.Image.Credentials, func(x fetch.RegistryCredential) bool { return x.Registry == c.Registry }) {
				old.Image.Credentials = append(old.Image.Credentials, c)
			}
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// keyring is the trusted key for name: Options.Keys, else the embedded one.
func (b *builder) keyring(name string, k fetch.TrustedKey) (openpgp.EntityList, error) {
	if el, ok := b.o.Keys[name]; ok {
		return el, nil
	}
	if el, ok := b.keys[name]; ok {
		return el, nil
	}
	el, err := k.Keyring()
	if err != nil {
		return nil, err
	}
	b.keys[name] = el
	return el, nil
}

func (b *builder) file(rule fileRule, n node) {
	dir, file, pin, version, ok := rule.file(n, b.o)
	if !ok {
		if rule.kind == KindCloudImage && b.o.CloudImage {
			b.o.Warn(fmt.Sprintf("%s: no cloud image for %s: bainode fetches Ubuntu's only", n.Hostname, n.Target))
		}
		return
	}
	a := fetch.Artifact{Name: file, URL: dir + "/" + file, SHA256: pin, Version: version, Kind: rule.kind}
	if pin == "" {
		sums, err := b.sumsOf(dir, rule)
		if err != nil {
			b.fail(fmt.Errorf("%s: %s: %w", n.Hostname, rule.field, err))
			return
		}
		if a.SHA256 = sums[file]; a.SHA256 == "" {
			b.fail(fmt.Errorf("%s: %s: %s/SHA256SUMS does not list %s", n.Hostname, rule.field, dir, file))
			return
		}
	}
	b.add(Request{Artifact: a, Nodes: []string{n.Hostname}, Field: rule.field})
}

func (b *builder) sumsOf(dir string, rule fileRule) (fetch.Sums, error) {
	if s, ok := b.sums[dir]; ok {
		return s, nil
	}
	if err, ok := b.failed[dir]; ok {
		return nil, err
	}
	var kr openpgp.EntityList
	if rule.key != "" {
		var err error
		if kr, err = b.keyring(rule.key, rule.trusted); err != nil {
			return nil, err
		}
	}
	s, err := fetch.FetchSHA256SUMS(b.o.Context, dir, kr, b.o.Fetch)
	if err != nil {
		b.setFailed(dir, err)
		return nil, err
	}
	b.sums[dir] = s
	return s, nil
}

func (b *builder) setFailed(key string, err error) {
	if b.failed == nil {
		b.failed = map[string]error{}
	}
	b.failed[key] = err
}

// aptJob is the apt work of the nodes that share sources and requests.
type aptJob struct {
	nodes    []string
	sources  []fetch.AptSource
	fields   []string          // by source
	requests []string          // name or name=version
	pinOf    map[string]string // package -> the setting pinning it
}

// apt resolves, for each group of nodes with the same repositories and
// requests, the packages and their dependencies over all those
// repositories' indexes.
func (b *builder) apt(ns []node) {
	jobs := map[string]*aptJob{}
	var order []string
	for _, n := range ns {
		j := &aptJob{pinOf: map[string]string{}}
		for _, repo := range aptRepos {
			if !repo.when(&n.Settings) {
				continue
			}
			kr, err := b.keyring(repo.key, repo.trusted)
			if err != nil {
				b.fail(fmt.Errorf("%s: %s: %w", n.Hostname, repo.field, err))
				continue
			}
			j.sources = append(j.sources, fetch.AptSource{URI: repo.uri(n), Suite: repo.suite(n),
				Components: repo.components, Arch: n.arch, Keyring: kr})
			j.fields = append(j.fields, repo.field)
			for _, p := range repo.packages {
				if p.when != nil && !p.when(&n.Settings) {
					continue
				}
				req := p.name
				if p.pin != nil {
					if v := p.pin(&n.Settings); v != "" {
						req += "=" + v
						j.pinOf[p.name] = p.pinField
					}
				}
				j.requests = append(j.requests, req)
			}
		}
		if len(j.sources) == 0 {
			continue
		}
		var key strings.Builder
		for _, s := range j.sources {
			key.WriteString(s.String() + " [" + s.Arch + "]\n")
		}
		key.WriteString(strings.Join(j.requests, " "))
		if old, ok := jobs[key.String()]; ok {
			old.nodes = append(old.nodes, n.Hostname)
			continue
		}
		j.nodes = []string{n.Hostname}
		jobs[key.String()] = j
		order = append(order, key.String())
	}
	for _, k := range order {
		b.resolve(jobs[k])
	}
}

func (b *builder) resolve(j *aptJob) {
	where := strings.Join(j.nodes, ", ")
	var lists [][]fetch.AptPackage
	for i, src := range j.sources {
		key := src.String() + " [" + src.Arch + "]"
		pkgs, ok := b.pkgs[key]
		if !ok {
			if err, failed := b.failed[key]; failed {
				b.fail(fmt.Errorf("%s: %s: %w", where, j.fields[i], err))
				return
			}
			var err error
			if pkgs, err = src.Packages(b.o.Context, b.o.Fetch); err != nil {
				b.setFailed(key, err)
				b.fail(fmt.Errorf("%s: %s: %s: %w", where, j.fields[i], src, err))
				return
			}
			b.pkgs[key] = pkgs
		}
		lists = append(lists, pkgs)
	}
	res, err := fetch.NewAptIndex(lists...).Resolve(j.requests, b.o.Installed)
	if err != nil {
		field := strings.Join(j.fields, ", ")
		for pkg, f := range j.pinOf {
			if strings.Contains(err.Error(), " "+pkg+" ") {
				field = f
			}
		}
		b.fail(fmt.Errorf("%s: %s: %w", where, field, err))
		return
	}
	if len(res.Missing) > 0 && b.o.Installed != nil {
		b.o.Warn(fmt.Sprintf("%s: %s: neither the image manifest nor the repositories have %s; the nodes' own archive must",
			where, strings.Join(j.fields, ", "), strings.Join(res.Missing, ", ")))
	}
	for _, p := range res.Packages {
		field := j.fields[0]
		for i, src := range j.sources {
			if p.BaseURL == src.URI {
				field = j.fields[i]
			}
		}
		a := p.Artifact()
		a.Kind = KindDeb
		b.add(Request{Artifact: a, Nodes: append([]string(nil), j.nodes...), Field: field})
	}
}

// ---- FromLock and Fetch ---------------------------------------------------

// FromLock turns a lock back into requests: files by URL and sha256, images
// by their locked digest (and tarball sha256).
func FromLock(l *fetch.Lock) []Request {
	var out []Request
	for _, a := range l.Artifacts {
		r := Request{Artifact: a, Field: "lock " + a.Name}
		if ref, ok := strings.CutPrefix(a.URL, fetch.ImageURLScheme); ok {
			r.Image = &Image{Ref: ref}
		}
		out = append(out, r)
	}
	return out
}

// Fetch makes every request present in the cache: files in parallel through
// fetch.Download (pinned, verified, resumed), then images through
// fetch.PullImage (o.Jobs at a time). It returns the lock entries, one per
// request in order, pinned (sha256, size; an image's digest as Version);
// a request that failed is returned as given and its error, naming its
// nodes and setting, is among the joined errors.
func Fetch(ctx context.Context, c *fetch.Cache, reqs []Request, o fetch.Options) ([]fetch.Artifact, error) {
	out := make([]fetch.Artifact, len(reqs))
	var files []fetch.Artifact
	var fileIdx, imgIdx []int
	for i, r := range reqs {
		out[i] = r.Artifact
		if r.Image != nil {
			imgIdx = append(imgIdx, i)
		} else {
			files = append(files, r.Artifact)
			fileIdx = append(fileIdx, i)
		}
	}
	var errs []error
	if len(files) > 0 {
		res, err := fetch.Download(ctx, c, files, o)
		if res == nil {
			return out, err
		}
		for k, i := range fileIdx {
			out[i] = res.Artifacts[k]
		}
		errs = append(errs, attribute(err, reqs, fileIdx)...)
	}

	jobs := o.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	imgErrs := make([]error, len(reqs))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for _, i := range imgIdx {
		r := reqs[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := fetch.PullImage(ctx, c, r.Image.Ref, r.Image.Platform, fetch.Keychain(r.Image.Credentials...),
				fetch.ImageOptions{Name: r.Artifact.Name, Digest: r.Artifact.Version, SHA256: r.Artifact.SHA256, Options: o})
			if err != nil {
				imgErrs[i] = fmt.Errorf("%s: %w", r.Where(), err)
				return
			}
			out[i] = a
		}()
	}
	wg.Wait()
	for _, e := range imgErrs {
		if e != nil {
			errs = append(errs, e)
		}
	}
	return out, errors.Join(errs...)
}

// attribute prefixes each of Download's errors (which start with the
// artifact's name) with the nodes and setting of its request.
func attribute(err error, reqs []Request, idx []int) []error {
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		msg := e.Error()
		var best *Request
		for _, i := range idx {
			r := &reqs[i]
			if strings.HasPrefix(msg, r.Artifact.Name+":") && (best == nil || len(r.Artifact.Name) > len(best.Artifact.Name)) {
				best = r
			}
		}
		if best != nil {
			e = fmt.Errorf("%s: %w", best.Where(), e)
		}
		out = append(out, e)
	}
	return out
}
