package plan

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/templates"
)

// Target is what differs between operating systems, read from
// templates/targets.yaml. This is the one parser of that file.
type Target struct {
	Name             string   `yaml:"-" json:"name"`
	Family           string   `yaml:"family" json:"family"`
	Codename         string   `yaml:"codename" json:"codename"`
	CloudInit        []string `yaml:"cloud_init" json:"cloud_init"`
	DockerPath       string   `yaml:"docker_path" json:"docker_path"`
	DHCPMatch        string   `yaml:"dhcp_match" json:"-"`
	DHCPFallback     bool     `yaml:"dhcp_fallback" json:"-"`
	NvidiaDriver     []string `yaml:"nvidia_driver" json:"-"`
	NvidiaPrecomp    []string `yaml:"nvidia_precompiled" json:"-"`
	NvidiaDKMS       []string `yaml:"nvidia_dkms" json:"-"`
	KernelHold       string   `yaml:"kernel_hold" json:"-"`
	NvidiaComponents []string `yaml:"nvidia_components" json:"-"`
	CUDARepo         string   `yaml:"cuda_repo" json:"-"`
	CUDARuntime      []string `yaml:"cuda_runtime" json:"-"`
	NFS              []string `yaml:"nfs" json:"-"`
}

// LoadTargets reads targets.yaml from fsys, strictly: an unknown field is
// an error.
func LoadTargets(fsys fs.FS) (map[string]Target, error) {
	b, err := fs.ReadFile(fsys, "targets.yaml")
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	var m map[string]Target
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("targets.yaml: %w", err)
	}
	for name, t := range m {
		if len(t.CloudInit) == 0 {
			return nil, fmt.Errorf("targets.yaml: %s: cloud_init: list the versions the release ships", name)
		}
		if len(t.NvidiaDriver) > 0 && len(t.NvidiaDKMS) == 0 {
			return nil, fmt.Errorf("targets.yaml: %s: nvidia_dkms: the fallback when no precompiled module fits the kernel", name)
		}
		if t.KernelHold != "" {
			if _, err := regexp.Compile(t.KernelHold); err != nil {
				return nil, fmt.Errorf("targets.yaml: %s: kernel_hold: %w", name, err)
			}
		}
		t.Name = name
		m[name] = t
	}
	return m, nil
}

// UserInBootcmd says the operator must be made by useradd in bootcmd: the
// target ships a cloud-init older than 22.1, which ignores an integer uid,
// while a string uid degrades `cloud-init status` from 23.4 on.
func (t Target) UserInBootcmd() bool {
	for _, v := range t.CloudInit {
		if versionLess(v, "22.1") {
			return true
		}
	}
	return false
}

// versionLess compares the upstream part of versions ("20.1-10-g71af48df-0ubuntu5"
// < "22.1" < "22.10").
func versionLess(a, b string) bool {
	a, _, _ = strings.Cut(a, "-")
	b, _, _ = strings.Cut(b, "-")
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// Targets is the embedded templates/targets.yaml, parsed once.
var Targets = sync.OnceValues(func() (map[string]Target, error) { return LoadTargets(templates.FS) })

// KernelWord stands, in driver package patterns, for the kernel the node
// runs (`uname -r`), which only the node knows: Fill leaves it for
// bainode-provision to fill.
const KernelWord = "{kernel}"

// Fill replaces {branch} and {cuda} in package name patterns.
func Fill(pats []string, branch, cuda string) []string {
	out := make([]string, len(pats))
	r := strings.NewReplacer("{branch}", branch, "{cuda}", cuda)
	for i, p := range pats {
		out[i] = r.Replace(p)
	}
	return out
}
