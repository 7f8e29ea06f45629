// Package artifacts turns the nodes' plans into the requests bainode fetch
// fills its cache with for an air-gapped install, under the names
// builder/payload looks them up by: the python-build-standalone tarball by
// its asset name, container images by plan.ImageArchiveName(ref), the .debs
// of Docker's and NVIDIA's repositories (resolved with their dependencies)
// through the lock, and optionally the Ubuntu cloud image a node boots from.
//
// What a node needs is builder/plan's; this package only finds the
// checksums and resolves the apt requests.
package artifacts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
)

// Kinds of Request, as recorded in the lock (fetch.Artifact.Kind).
const (
	KindPython     = plan.KindPython
	KindCloudImage = plan.KindCloudImage
	KindDeb        = plan.KindDeb
	KindImage      = plan.KindImage
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
	KeyDocker     = plan.KeyDocker
	KeyNVIDIA     = plan.KeyNVIDIA
	KeyCloudImage = plan.KeyCloudImage
)

// Options tune ForSite.
type Options struct {
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
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
}

// imageRequests: every images.pull reference, cached as payload looks it up.
func imageRequests(n *spec.Node, p *plan.Plan) []Request {
	var creds []fetch.RegistryCredential
	for _, r := range n.Images.Registries {
		creds = append(creds, fetch.RegistryCredential{Registry: r.Registry, Username: r.Username, Password: r.Token})
	}
	var out []Request
	for _, im := range p.Images() {
		out = append(out, Request{
			Artifact: fetch.Artifact{Name: payload.ImageArchiveName(im.Ref), URL: fetch.ImageURLScheme + im.Ref, Kind: KindImage},
			Image:    &Image{Ref: im.Ref, Platform: im.Platform, Credentials: creds},
			Nodes:    []string{n.Hostname},
			Field:    im.Field,
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
// is listed once. Errors name the node and the setting. ctx bounds the
// index downloads.
func ForSite(ctx context.Context, site *spec.Site, nodes []*spec.Node, o Options) ([]Request, error) {
	o.defaults()
	if nodes == nil && site != nil {
		for i := range site.Nodes {
			nodes = append(nodes, &site.Nodes[i])
		}
	}
	b := &builder{o: &o, byName: map[string]*Request{}, sums: map[string]fetch.Sums{}, pkgs: map[string][]fetch.AptPackage{}, keys: map[string]openpgp.EntityList{}}
	var ps []*plan.Plan
	var planned []*spec.Node // by ps
	for _, n := range nodes {
		p, err := plan.For(n, plan.Options{Arch: o.Arch, CloudImage: o.CloudImage})
		if err != nil {
			b.fail(err)
			continue
		}
		if o.CloudImage && p.Target.Family != "ubuntu" {
			o.Warn(fmt.Sprintf("%s: no cloud image for %s: bainode fetches Ubuntu's only", n.Hostname, n.Target))
		}
		ps = append(ps, p)
		planned = append(planned, n)
	}
	for _, p := range ps {
		for _, f := range p.Files() {
			b.file(ctx, f, p.Node)
		}
	}
	b.apt(ctx, ps)
	for i, p := range ps {
		for _, r := range imageRequests(planned[i], p) {
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

func (b *builder) file(ctx context.Context, f plan.File, host string) {
	a := fetch.Artifact{Name: f.Name, URL: f.URL(), SHA256: f.SHA256, Version: f.Version, Kind: f.Kind}
	if a.SHA256 == "" {
		sums, err := b.sumsOf(ctx, f)
		if err != nil {
			b.fail(fmt.Errorf("%s: %s: %w", host, f.Field, err))
			return
		}
		if a.SHA256 = sums[f.Name]; a.SHA256 == "" {
			b.fail(fmt.Errorf("%s: %s: %s/SHA256SUMS does not list %s", host, f.Field, f.Dir, f.Name))
			return
		}
	}
	b.add(Request{Artifact: a, Nodes: []string{host}, Field: f.Field})
}

func (b *builder) sumsOf(ctx context.Context, f plan.File) (fetch.Sums, error) {
	dir := f.Dir
	if s, ok := b.sums[dir]; ok {
		return s, nil
	}
	if err, ok := b.failed[dir]; ok {
		return nil, err
	}
	var kr openpgp.EntityList
	if f.Key != "" {
		var err error
		if kr, err = b.keyring(f.Key, f.Trusted); err != nil {
			return nil, err
		}
	}
	s, err := fetch.FetchSHA256SUMS(ctx, dir, kr, b.o.Fetch)
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
func (b *builder) apt(ctx context.Context, ps []*plan.Plan) {
	jobs := map[string]*aptJob{}
	var order []string
	for _, n := range ps {
		j := &aptJob{pinOf: map[string]string{}}
		for _, repo := range n.Repos() {
			kr, err := b.keyring(repo.Key, repo.Trusted)
			if err != nil {
				b.fail(fmt.Errorf("%s: %s: %w", n.Node, repo.Field, err))
				continue
			}
			j.sources = append(j.sources, fetch.AptSource{URI: repo.URI, Suite: repo.Suite,
				Components: repo.Components, Arch: n.Arch, Keyring: kr})
			j.fields = append(j.fields, repo.Field)
			for _, p := range repo.Packages {
				if p.Version != "" {
					j.pinOf[p.Name] = p.PinField
				}
				j.requests = append(j.requests, p.Request())
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
			old.nodes = append(old.nodes, n.Node)
			continue
		}
		j.nodes = []string{n.Node}
		jobs[key.String()] = j
		order = append(order, key.String())
	}
	for _, k := range order {
		b.resolve(ctx, jobs[k])
	}
}

func (b *builder) resolve(ctx context.Context, j *aptJob) {
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
			if pkgs, err = src.Packages(ctx, b.o.Fetch); err != nil {
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
		var me *fetch.MissingPackageError
		if errors.As(err, &me) && me.Version != "" && j.pinOf[me.Package] != "" {
			field = j.pinOf[me.Package] // the pin, not the package, is wrong
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
