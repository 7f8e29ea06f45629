// Package plan decides, once, what a node gets and from where: the ordered
// steps of its install, each marked as baked into an image or done on the
// node at first boot, with every apt repository, package, pin, key, file
// and container image a step needs. render, artifacts (what to fetch),
// payload (what to carry) and bainode plan read it; the rule tables below
// are the only copy of which setting brings in which package.
//
//	spec (validated) + targets.yaml -> plan -> render / artifacts -> fetch -> payload
package plan

import (
	"fmt"
	"strings"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/spec"
)

// Where a step runs: baked into an image, or on the node at first boot.
type Where string

const (
	Image Where = "image"
	Node  Where = "node"
)

// Kinds of artifact, as recorded in the lock (fetch.Artifact.Kind).
const (
	KindPython     = "python"
	KindCloudImage = "cloud-image"
	KindDeb        = "deb"
	KindImage      = "image"
)

// Key names of the trusted keys (artifacts.Options.Keys).
const (
	KeyDocker     = "docker"
	KeyNVIDIA     = "nvidia"
	KeyCloudImage = "cloud-image"
)

// Repository and mirror facts Go owns.
const (
	// NVIDIAToolkitRepo is the NVIDIA container toolkit's apt repository,
	// one flat repository per architecture (render's NVIDIA_TOOLKIT_REPO).
	NVIDIAToolkitRepo = "https://nvidia.github.io/libnvidia-container/stable/deb"
	// UbuntuCloudImages is where Ubuntu's cloud images are published.
	UbuntuCloudImages = "https://cloud-images.ubuntu.com"
	// DistDocker is the distribution's own Docker package, which a payload
	// may carry instead of Docker's.
	DistDocker = "docker.io"
	// CUDAFingerprint is the CUDA repository's signing key (checked on the
	// node; bainode does not fetch CUDA).
	CUDAFingerprint = "EB693B3035CD5710E231E123A4B469963BF863CC"
)

// Plan is one node's install.
type Plan struct {
	Node   string `json:"node"`
	Role   string `json:"role"`
	Target Target `json:"target"`
	Arch   string `json:"arch"`
	// Artifacts is the node's artifacts setting: online or payload.
	Artifacts string `json:"artifacts"`
	Steps     []Step `json:"steps"`
	// Sources are the steps' downloads and where each comes from.
	Sources []Source `json:"sources"`
}

// Step is one part of the install.
type Step struct {
	Name  string `json:"name"`
	Where Where  `json:"where"`
	// Field is the setting that turns the step on.
	Field    string     `json:"field,omitempty"`
	Repos    []AptRepo  `json:"repos,omitempty"`
	Packages []string   `json:"packages,omitempty"` // from the node's own archive
	Files    []File     `json:"files,omitempty"`
	Images   []ImageRef `json:"images,omitempty"`
	Paths    []string   `json:"paths,omitempty"` // files the step writes on the node
	Driver   *Driver    `json:"driver,omitempty"`
}

// Driver is how the NVIDIA driver's kernel module reaches the kernel the
// node runs. Package names may hold KernelWord, which bainode-provision
// replaces with `uname -r`.
type Driver struct {
	// Precompiled are tried first: signed modules built for exactly that
	// kernel, installed when the archive (or payload) has them.
	Precompiled []string `json:"precompiled,omitempty"`
	// DKMS is the fallback: the module built on the node against the
	// running kernel's headers.
	DKMS []string `json:"dkms"`
	// KernelHold matches the installed kernel packages held while the
	// driver goes in, so no kernel upgrade slips in under it.
	KernelHold string `json:"kernel_hold,omitempty"`
	// NoRecommends: the driver is installed without recommended packages
	// (they bring a headers meta package for the newest kernel).
	NoRecommends bool `json:"no_recommends"`
}

// AptRepo is a signed apt repository and what the node installs from it.
type AptRepo struct {
	Field       string           `json:"field"`
	Key         string           `json:"key"`
	Trusted     fetch.TrustedKey `json:"-"`
	Fingerprint string           `json:"fingerprint"`
	URI         string           `json:"uri"`
	Suite       string           `json:"suite"` // "/" for a flat repository
	Components  []string         `json:"components,omitempty"`
	Packages    []AptPackage     `json:"packages"`
}

// AptPackage is one requested package; Version, if set, pins it and
// PinField names the setting that does.
type AptPackage struct {
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	PinField string `json:"pin_field,omitempty"`
}

// Request is the package as apt is asked for it: name or name=version.
func (p AptPackage) Request() string {
	if p.Version == "" {
		return p.Name
	}
	return p.Name + "=" + p.Version
}

// File is a download listed in a SHA256SUMS next to it.
type File struct {
	Field   string           `json:"field"`
	Kind    string           `json:"kind"`
	Dir     string           `json:"dir"`
	Name    string           `json:"name"`
	SHA256  string           `json:"sha256,omitempty"` // pinned by the site
	Version string           `json:"version,omitempty"`
	Key     string           `json:"key,omitempty"` // "" for an unsigned SHA256SUMS
	Trusted fetch.TrustedKey `json:"-"`
}

// URL is where the file is downloaded from.
func (f File) URL() string { return f.Dir + "/" + f.Name }

// ImageRef is a container image the node pulls.
type ImageRef struct {
	Field    string `json:"field"`
	Ref      string `json:"ref"`
	Key      string `json:"key"` // ImageKey(Ref)
	Platform string `json:"platform"`
}

// Options tune For.
type Options struct {
	Arch string // Debian architecture; default amd64
	// CloudImage adds the Ubuntu cloud image the node boots from as its
	// base (ubuntu targets only).
	CloudImage bool
}

// PythonAsset is the python-build-standalone file name of a node's Python.
func PythonAsset(p spec.Python) string {
	return fmt.Sprintf("cpython-%s+%s-%s-%s.tar.gz", p.Version, p.Release, p.Triple, p.Flavor)
}

// TargetError is a node whose target targets.yaml does not describe.
type TargetError struct{ Node, Target string }

func (e *TargetError) Error() string {
	return fmt.Sprintf("%s: target: no data for %q in targets.yaml", e.Node, e.Target)
}

// For is n's plan for its target, from the embedded targets.yaml.
func For(n *spec.Node, o Options) (*Plan, error) {
	ts, err := Targets()
	if err != nil {
		return nil, err
	}
	t, ok := ts[n.Target]
	if !ok {
		return nil, &TargetError{n.Hostname, n.Target}
	}
	return ForTarget(n, t, o), nil
}

// ForTarget is n's plan for target t.
func ForTarget(n *spec.Node, t Target, o Options) *Plan {
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	p := &Plan{Node: n.Hostname, Role: n.Role, Target: t, Arch: o.Arch, Artifacts: n.Artifacts}
	s := &n.Settings
	for _, r := range rules {
		if r.when != nil && !r.when(s) {
			continue
		}
		st := Step{Name: r.name, Where: r.where, Field: r.field}
		for _, ar := range r.repos {
			st.Repos = append(st.Repos, ar.repo(n, t, o.Arch))
		}
		if r.build != nil {
			r.build(&st, n, t, o)
		}
		if st.Name == "base" && len(st.Files) == 0 {
			continue
		}
		p.Steps = append(p.Steps, st)
	}
	p.sources()
	return p
}

// Repos are all the plan's apt repositories, in step order.
func (p *Plan) Repos() []AptRepo {
	var out []AptRepo
	for _, s := range p.Steps {
		out = append(out, s.Repos...)
	}
	return out
}

// Files are all the plan's downloads, in step order.
func (p *Plan) Files() []File {
	var out []File
	for _, s := range p.Steps {
		out = append(out, s.Files...)
	}
	return out
}

// Images are all the plan's container images, in step order.
func (p *Plan) Images() []ImageRef {
	var out []ImageRef
	for _, s := range p.Steps {
		out = append(out, s.Images...)
	}
	return out
}

// Step returns the named step, or nil.
func (p *Plan) Step(name string) *Step {
	for i := range p.Steps {
		if p.Steps[i].Name == name {
			return &p.Steps[i]
		}
	}
	return nil
}

func trimSlash(s string) string { return strings.TrimSuffix(s, "/") }
