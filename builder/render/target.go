package render

import (
	"fmt"
	"io/fs"
	"strings"

	"gopkg.in/yaml.v3"
)

// Target is what differs between operating systems, read from
// templates/targets.yaml.
type Target struct {
	Name             string   `yaml:"-"`
	Family           string   `yaml:"family"`
	Codename         string   `yaml:"codename"`
	DockerPath       string   `yaml:"docker_path"`
	DHCPMatch        string   `yaml:"dhcp_match"`
	DHCPInterface    string   `yaml:"dhcp_interface"`
	NvidiaDriver     []string `yaml:"nvidia_driver"`
	NvidiaComponents []string `yaml:"nvidia_components"`
	CUDARepo         string   `yaml:"cuda_repo"`
	CUDARuntime      []string `yaml:"cuda_runtime"`
	NFS              []string `yaml:"nfs"`
}

// LoadTargets reads targets.yaml from a templates FS.
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
		t.Name = name
		m[name] = t
	}
	return m, nil
}

// fill replaces {branch} and {cuda} in package name patterns.
func fill(pats []string, branch, cuda string) []string {
	out := make([]string, len(pats))
	r := strings.NewReplacer("{branch}", branch, "{cuda}", cuda)
	for i, p := range pats {
		out[i] = r.Replace(p)
	}
	return out
}
