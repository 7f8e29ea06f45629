package spec

import (
	_ "embed"
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

//go:embed guide.yaml
var guideYAML []byte

// guideData is the guide's values, read once from guide.yaml.
type guideData struct {
	Operator          Operator             `yaml:"operator"`
	Limits            Limits               `yaml:"limits"`
	Sysctl            [][2]string          `yaml:"sysctl"`
	Python            Python               `yaml:"python"`
	PythonByBackendAI map[string][2]string `yaml:"python_by_backendai"`
	Services          map[string][]string  `yaml:"services"`
	Images            []string             `yaml:"images"`
	Storage           Storage              `yaml:"storage"`
	Docker            Docker               `yaml:"docker"`
	GPU               GPU                  `yaml:"gpu"`
	Artifacts         string               `yaml:"artifacts"`
}

var guide = func() guideData {
	var g guideData
	if err := yaml.Unmarshal(guideYAML, &g); err != nil {
		panic(fmt.Sprintf("spec: embedded guide.yaml: %v", err))
	}
	return g
}()

// GuideSysctl returns the guide's kernel parameters in the guide's order.
func GuideSysctl() [][2]string { return append([][2]string(nil), guide.Sysctl...) }

// BackendAIReleases lists the release lines python.backendai accepts.
func BackendAIReleases() []string {
	var rs []string
	for r := range guide.PythonByBackendAI {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	return rs
}

// Defaults returns the guide's settings for a node of the given role.
func Defaults(role string) Settings {
	s := Settings{
		Operator: guide.Operator,
		Docker:   Docker{Enabled: true, Compose: true, Repository: guide.Docker.Repository},
		Limits:   Limits{NOFILE: guide.Limits.NOFILE, NPROC: guide.Limits.NPROC, Systemd: true},
		Sysctl:   Sysctl{Enabled: true},
		Python:   guide.Python,
		Hosts:    Hosts{Enabled: true},
		Storage:  Storage{Local: append([]string(nil), guide.Storage.Local...)},
		GPU:      GPU{Driver: guide.GPU.Driver, CUDA: guide.GPU.CUDA, Toolkit: true},

		Artifacts: guide.Artifacts,
	}
	s.Operator.Groups = append([]string(nil), guide.Operator.Groups...)
	s.Operator.SudoNopasswd = true
	s.Python.Enabled = true
	s.Python.Services = append([]string(nil), guide.Services[role]...)
	if role == "agent" || role == "all-in-one" {
		s.Images.Pull = append([]string(nil), guide.Images...)
	}
	return s
}
