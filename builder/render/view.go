package render

import (
	"fmt"

	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
)

// view is what the templates see for one node.
type view struct {
	Version    string
	SiteName   string
	Node       *spec.Node
	S          *spec.Settings
	Op         *spec.Operator
	Target     Target
	Files      []writeFile
	InstanceID string

	ExtraGroups  []string // groups to create before the user (docker)
	HostsOn      bool
	HostsBegin   string
	HostsEnd     string
	HostNames    []string
	NFSNames     []string
	Sysctl       [][2]string
	DockerRepo   string
	GPUDriver    []string
	GPUModule    plan.Driver // how the kernel module comes (plan's choice)
	KernelWord   string
	CUDAPackages []string
	Toolkit      bool
	// From the node's plan: apt requests (name or name=version) per step.
	DockerPackages    []string
	DockerDist        string
	ToolkitPackages   []string
	NVIDIAToolkitRepo string
	// ImageKeys are images.pull normalised, in order: what the payload
	// manifest lists (plan.ImageKey).
	ImageKeys     []string
	PayloadFormat int
	Verifier      bool // user-data carries the verifier (seed.verifier)
	Keys          struct{ Docker, NVIDIA, CUDA string }
	Python        struct{ Asset, URL, SumsURL string }
	PythonHome    string
	Net           netView
}

type netView struct {
	ID, MAC, Glob, Address, Gateway string
	DNS, DNSSearch                  []string
	Fallback                        bool // no config: cloud-init's fallback DHCPs the first NIC
}

func (r *Renderer) view(site *spec.Site, n *spec.Node) (*view, error) {
	t, ok := r.targets[n.Target]
	if !ok {
		return nil, fmt.Errorf("%s: no target data for %q", n.Hostname, n.Target)
	}
	s := &n.Settings
	v := &view{
		Version: r.version, SiteName: site.Name, Node: n, S: s, Op: &s.Operator, Target: t,
		HostsBegin: HostsBegin, HostsEnd: HostsEnd,
		HostsOn:    s.Hosts.Enabled && len(s.Hosts.Entries) > 0,
		Keys:       keyFingerprints,
		PythonHome: fmt.Sprintf("/home/%s/.static-python/versions/%s", s.Operator.Name, s.Python.Version),
	}
	if v.HostsOn {
		for _, e := range s.Hosts.Entries {
			v.HostNames = append(v.HostNames, e.Names...)
		}
	}
	for _, m := range s.Storage.NFS {
		v.NFSNames = append(v.NFSNames, m.Name)
	}
	for _, g := range s.Operator.Groups {
		// Groups that no package has made yet; sudo exists on every target.
		if g != "sudo" && g != s.Operator.Name {
			v.ExtraGroups = append(v.ExtraGroups, g)
		}
	}
	v.Sysctl = sysctlLines(s.Sysctl.Set)
	v.DockerRepo = s.Docker.Repository + "/" + t.DockerPath
	v.DockerDist = plan.DistDocker
	v.NVIDIAToolkitRepo = plan.NVIDIAToolkitRepo
	v.KernelWord = plan.KernelWord
	pl := plan.ForTarget(n, t, plan.Options{})
	if st := pl.Step("docker"); st != nil {
		v.DockerPackages = requests(st.Repos)
	}
	if st := pl.Step("gpu-driver"); st != nil {
		v.GPUDriver = plan.Fill(t.NvidiaDriver, s.GPU.Driver, s.GPU.CUDA)
		v.GPUModule = *st.Driver
		if s.GPU.CUDA != "" {
			v.CUDAPackages = plan.Fill(t.CUDARuntime, s.GPU.Driver, s.GPU.CUDA)
		}
	}
	if st := pl.Step("gpu-toolkit"); st != nil {
		v.Toolkit = true
		v.ToolkitPackages = requests(st.Repos)
	}
	for _, im := range pl.Images() {
		v.ImageKeys = append(v.ImageKeys, im.Key)
	}
	v.PayloadFormat = plan.PayloadFormat
	v.Verifier = site.Seed.OnNodeVerifier()
	if s.Python.Enabled {
		p := s.Python
		v.Python.Asset = plan.PythonAsset(p)
		v.Python.URL = fmt.Sprintf("%s/%s/%s", p.Mirror, p.Release, v.Python.Asset)
		v.Python.SumsURL = fmt.Sprintf("%s/%s/SHA256SUMS", p.Mirror, p.Release)
	}
	v.Net = netView{ID: "primary", MAC: n.MAC, DNS: n.DNS, DNSSearch: n.DNSSearch, Gateway: n.Gateway}
	switch {
	case n.Interface != "":
		v.Net.ID = n.Interface
	case n.MAC == "" && t.DHCPFallback:
		if n.IP != "" {
			return nil, fmt.Errorf("%s: ip: %s matches a NIC by mac or interface only; set one of them", n.Hostname, n.Target)
		}
		v.Net.Fallback = true
	case n.MAC == "":
		v.Net.Glob = t.DHCPMatch
	}
	if n.IP != "" {
		p, err := spec.ParseIP(n.IP)
		if err != nil {
			return nil, fmt.Errorf("%s: ip: %w", n.Hostname, err)
		}
		v.Net.Address = p.String()
	}
	return v, nil
}

// requests are the repositories' packages as apt is asked for them.
func requests(repos []plan.AptRepo) []string {
	var out []string
	for _, r := range repos {
		for _, p := range r.Packages {
			out = append(out, p.Request())
		}
	}
	return out
}

// sysctlLines is the guide's keys in the guide's order with overrides
// applied, then extra keys sorted by name.
func sysctlLines(set map[string]string) [][2]string {
	lines := spec.GuideSysctl()
	seen := map[string]bool{}
	for i, kv := range lines {
		seen[kv[0]] = true
		if v, ok := set[kv[0]]; ok {
			lines[i][1] = v
		}
	}
	for _, k := range sortedKeys(set) {
		if !seen[k] {
			lines = append(lines, [2]string{k, set[k]})
		}
	}
	return lines
}
