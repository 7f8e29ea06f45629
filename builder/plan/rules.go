package plan

import (
	"strings"

	"fmt"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/spec"
)

// rule is one step: when it applies and what it needs.
type rule struct {
	name  string
	where Where
	field string
	when  func(s *spec.Settings) bool
	repos []repoRule
	build func(st *Step, n *spec.Node, t Target, o Options)
}

// repoRule is an apt repository and which packages the node installs from
// it (as bainode-provision asks apt for them, reading provision.env).
type repoRule struct {
	field      string
	key        string
	trusted    fetch.TrustedKey
	uri        func(n *spec.Node, t Target, arch string) string
	suite      func(t Target) string
	components []string
	packages   []pkgRule
}

type pkgRule struct {
	name     string
	when     func(s *spec.Settings) bool
	pin      func(s *spec.Settings) string
	pinField string
}

func (r repoRule) repo(n *spec.Node, t Target, arch string) AptRepo {
	a := AptRepo{Field: r.field, Key: r.key, Trusted: r.trusted, Fingerprint: r.trusted.Fingerprints[0],
		URI: r.uri(n, t, arch), Suite: r.suite(t), Components: r.components}
	for _, p := range r.packages {
		if p.when != nil && !p.when(&n.Settings) {
			continue
		}
		ap := AptPackage{Name: p.name}
		if p.pin != nil {
			if v := p.pin(&n.Settings); v != "" {
				ap.Version, ap.PinField = v, p.pinField
			}
		}
		a.Packages = append(a.Packages, ap)
	}
	return a
}

func dockerVersion(s *spec.Settings) string  { return s.Docker.Version }
func toolkitVersion(s *spec.Settings) string { return s.GPU.ToolkitVersion }
func toolkitPinned(s *spec.Settings) bool    { return s.GPU.ToolkitVersion != "" }

var dockerRepo = repoRule{
	field: "docker", key: KeyDocker, trusted: fetch.DockerKey,
	uri: func(n *spec.Node, t Target, _ string) string {
		return trimSlash(n.Docker.Repository) + "/" + t.DockerPath
	},
	suite:      func(t Target) string { return t.Codename },
	components: []string{"stable"},
	packages: []pkgRule{
		{name: "containerd.io"},
		{name: "docker-buildx-plugin"},
		{name: "docker-ce", pin: dockerVersion, pinField: "docker.version"},
		{name: "docker-ce-cli", pin: dockerVersion, pinField: "docker.version"},
		{name: "docker-compose-plugin", when: func(s *spec.Settings) bool { return s.Docker.Compose }},
	},
}

var toolkitRepo = repoRule{
	field: "gpu.toolkit", key: KeyNVIDIA, trusted: fetch.NVIDIAKey,
	uri:   func(_ *spec.Node, _ Target, arch string) string { return NVIDIAToolkitRepo + "/" + arch },
	suite: func(Target) string { return "/" },
	packages: []pkgRule{
		{name: "nvidia-container-toolkit", pin: toolkitVersion, pinField: "gpu.toolkit_version"},
		{name: "nvidia-container-toolkit-base", when: toolkitPinned, pin: toolkitVersion, pinField: "gpu.toolkit_version"},
		{name: "libnvidia-container-tools", when: toolkitPinned, pin: toolkitVersion, pinField: "gpu.toolkit_version"},
		{name: "libnvidia-container1", when: toolkitPinned, pin: toolkitVersion, pinField: "gpu.toolkit_version"},
	},
}

// rules are the steps in install order: image steps first, then what is
// particular to one node.
var rules = []rule{
	{name: "base", where: Image, field: "target", build: func(st *Step, n *spec.Node, t Target, o Options) {
		if !o.CloudImage || t.Family != "ubuntu" {
			return
		}
		st.Files = append(st.Files, File{Field: "target (--cloud-image)", Kind: KindCloudImage,
			Dir: UbuntuCloudImages + "/" + t.Codename + "/current", Name: t.Codename + "-server-cloudimg-" + o.Arch + ".img",
			Key: KeyCloudImage, Trusted: fetch.UbuntuCloudImageKey})
	}},
	{name: "user", where: Image, field: "operator", build: func(st *Step, n *spec.Node, _ Target, _ Options) {
		st.Paths = []string{"/home/" + n.Operator.Name}
	}},
	{name: "limits", where: Image, field: "limits", build: func(st *Step, _ *spec.Node, _ Target, _ Options) {
		st.Paths = []string{"/etc/security/limits.d/99-backendai.conf"}
	}},
	{name: "sysctl", where: Image, field: "sysctl", when: func(s *spec.Settings) bool { return s.Sysctl.Enabled },
		build: func(st *Step, _ *spec.Node, _ Target, _ Options) {
			st.Paths = []string{"/etc/sysctl.d/99-backendai.conf"}
		}},
	{name: "docker", where: Image, field: "docker", when: func(s *spec.Settings) bool { return s.Docker.Enabled },
		repos: []repoRule{dockerRepo}},
	{name: "gpu-driver", where: Image, field: "gpu", when: func(s *spec.Settings) bool { return s.GPU.Enabled },
		build: func(st *Step, n *spec.Node, t Target, _ Options) {
			st.Packages = Fill(t.NvidiaDriver, n.GPU.Driver, n.GPU.CUDA)
			if n.GPU.CUDA != "" {
				st.Packages = append(st.Packages, Fill(t.CUDARuntime, n.GPU.Driver, n.GPU.CUDA)...)
			}
			st.Driver = &Driver{
				Precompiled: Fill(t.NvidiaPrecomp, n.GPU.Driver, n.GPU.CUDA),
				DKMS:        Fill(t.NvidiaDKMS, n.GPU.Driver, n.GPU.CUDA),
				KernelHold:  t.KernelHold, NoRecommends: true,
			}
		}},
	{name: "gpu-toolkit", where: Image, field: "gpu.toolkit", when: func(s *spec.Settings) bool { return s.GPU.Enabled && s.GPU.Toolkit },
		repos: []repoRule{toolkitRepo}},
	{name: "python", where: Image, field: "python", when: func(s *spec.Settings) bool { return s.Python.Enabled },
		build: func(st *Step, n *spec.Node, _ Target, _ Options) {
			p := n.Python
			st.Files = append(st.Files, File{Field: "python", Kind: KindPython, Dir: trimSlash(p.Mirror) + "/" + p.Release,
				Name: PythonAsset(p), SHA256: p.SHA256, Version: p.Version + "+" + p.Release})
		}},
	{name: "images", where: Image, field: "images.pull", when: func(s *spec.Settings) bool { return len(s.Images.Pull) > 0 },
		build: func(st *Step, n *spec.Node, _ Target, o Options) {
			for i, ref := range n.Images.Pull {
				st.Images = append(st.Images, ImageRef{Field: fmt.Sprintf("images.pull[%d]", i), Ref: ref, Key: ImageKey(ref), Platform: "linux/" + o.Arch})
			}
		}},
	{name: "hostname", where: Node, field: "hostname"},
	{name: "network", where: Node, field: "ip"},
	{name: "hosts", where: Node, field: "hosts", when: func(s *spec.Settings) bool { return s.Hosts.Enabled && len(s.Hosts.Entries) > 0 },
		build: func(st *Step, _ *spec.Node, _ Target, _ Options) { st.Paths = []string{"/etc/hosts"} }},
	{name: "storage", where: Node, field: "storage.nfs", when: func(s *spec.Settings) bool { return len(s.Storage.NFS) > 0 },
		build: func(st *Step, n *spec.Node, t Target, _ Options) {
			st.Packages = t.NFS
			st.Paths = []string{"/etc/fstab"}
		}},
	{name: "verify", where: Node, field: "verify"},
}

// PackageNames are every package name the rules and targets.yaml can ask
// for (patterns unfilled), for the contract test that keeps them out of
// the scripts.
func PackageNames() []string {
	names := []string{DistDocker}
	for _, r := range []repoRule{dockerRepo, toolkitRepo} {
		for _, p := range r.packages {
			names = append(names, p.name)
		}
	}
	ts, _ := Targets()
	for _, t := range ts {
		for _, l := range [][]string{t.NvidiaDriver, t.NvidiaPrecomp, t.NvidiaDKMS, t.CUDARuntime, t.NFS} {
			for _, p := range l {
				if i := strings.IndexByte(p, '{'); i > 0 {
					p = p[:i] // the fixed prefix of a pattern
				}
				names = append(names, p)
			}
		}
	}
	return names
}
