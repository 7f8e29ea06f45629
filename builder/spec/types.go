// Package spec reads and validates bainode site files: one YAML file that
// describes every Backend.AI host of a site. Loading is strict (unknown keys
// are errors) and every problem names its file, line, column and field path.
package spec

// Version is the only site file version this release reads.
const Version = 1

// Targets are the operating systems bainode renders for. Ubuntu 20.04 is the
// guide's release and the default.
var Targets = []string{"ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04", "ubuntu-26.04", "debian-12"}

// DefaultTarget is the guide's release.
const DefaultTarget = "ubuntu-20.04"

// Roles a node can have.
var Roles = []string{"manager", "agent", "storage", "all-in-one"}

// Site is a whole site file. The Settings at the top apply to every node; a
// role's block and then a node's own keys override them.
type Site struct {
	Version  int         `yaml:"version"`
	Name     string      `yaml:"name"`
	Target   string      `yaml:"target"`
	Seed     SeedOptions `yaml:"seed"`
	Settings `yaml:",inline"`
	Roles    map[string]Settings `yaml:"roles"`
	Nodes    []Node              `yaml:"nodes"`

	// File is the path the site was read from, for messages.
	File string `yaml:"-"`
	// Warnings are problems that do not stop the site from loading; a
	// strict caller treats them as errors.
	Warnings []Problem `yaml:"-"`
}

// SeedOptions choose the NoCloud seed image format.
type SeedOptions struct {
	Format string `yaml:"format"` // iso (default) or vfat
	Gzip   bool   `yaml:"gzip"`   // gzip user-data (cloud-init unpacks it)
	// Verifier false leaves the on-node verifier out of user-data (EC2's
	// 16 KiB); verify.env stays, for `bainode verify` run on the node.
	Verifier *bool `yaml:"verifier"`
}

// OnNodeVerifier says whether user-data carries the verifier (the default).
func (o SeedOptions) OnNodeVerifier() bool { return o.Verifier == nil || *o.Verifier }

// Node is one host. Its Settings are the effective ones: site, then role,
// then the node's own keys.
type Node struct {
	Hostname string   `yaml:"hostname"`
	Role     string   `yaml:"role"`
	Aliases  []string `yaml:"aliases"`
	MAC      string   `yaml:"mac"`
	// Static addressing; without ip the node uses DHCP on its first NIC.
	IP        string   `yaml:"ip"` // 10.20.30.10 or 10.20.30.10/24 (default /24)
	Gateway   string   `yaml:"gateway"`
	DNS       []string `yaml:"dns"`
	DNSSearch []string `yaml:"dns_search"` // search domains, with ip
	Interface string   `yaml:"interface"`  // default: matched by MAC, else the first e* NIC
	Target    string   `yaml:"target"`
	// Disk picks the disk an image deploy writes; nil means the only disk.
	Disk     *Disk `yaml:"disk"`
	Settings `yaml:",inline"`
}

// Disk is a node's target disk rule for image deploys. Every set key must
// match, and exactly one disk must match them all.
type Disk struct {
	ByPath string `yaml:"by_path"` // a /dev/disk/by-path name: pci-0000:3b:00.0-nvme-1
	Serial string `yaml:"serial"`
	Size   string `yaml:"size"` // 960G, 894GiB, 1.92T: matches within 1%
}

// Settings are the guide's sections. Every field has the guide's default.
type Settings struct {
	Operator Operator `yaml:"operator"`
	Docker   Docker   `yaml:"docker"`
	Limits   Limits   `yaml:"limits"`
	Sysctl   Sysctl   `yaml:"sysctl"`
	Python   Python   `yaml:"python"`
	Hosts    Hosts    `yaml:"hosts"`
	Storage  Storage  `yaml:"storage"`
	GPU      GPU      `yaml:"gpu"`
	Images   Images   `yaml:"images"`
	// Artifacts says where packages, Python and images come from: "online"
	// (the network, the guide's way) or "payload" (a BAIPAYLOAD disk made by
	// 'bainode payload', for air-gapped nodes).
	Artifacts string `yaml:"artifacts"`
}

// Artifacts modes.
const (
	ArtifactsOnline  = "online"
	ArtifactsPayload = "payload"
)

// Operator is the account that runs Backend.AI ("Create a user account").
type Operator struct {
	Name              string   `yaml:"name"`
	UID               int      `yaml:"uid"`
	GID               int      `yaml:"gid"`
	Shell             string   `yaml:"shell"`
	Groups            []string `yaml:"groups"`
	SudoNopasswd      bool     `yaml:"sudo_nopasswd"`
	PasswordHash      string   `yaml:"password_hash"` // crypt(3) SHA-512: $6$...
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys"`
}

// Docker is "Install Docker engine" with the compose plugin.
type Docker struct {
	Enabled bool   `yaml:"enabled"`
	Version string `yaml:"version"` // apt version pin for docker-ce and docker-ce-cli
	Compose bool   `yaml:"compose"`
	// Repository is Docker's apt base URL; the target adds /ubuntu or /debian.
	Repository string `yaml:"repository"`
	// DaemonJSON is merged into /etc/docker/daemon.json, never replacing it.
	DaemonJSON map[string]any `yaml:"daemon_json"`
}

// Limits is /etc/security/limits.d/99-backendai.conf.
type Limits struct {
	NOFILE  int  `yaml:"nofile"`
	NPROC   int  `yaml:"nproc"`
	Systemd bool `yaml:"systemd"` // also DefaultLimitNOFILE/NPROC for services
}

// Sysctl is /etc/sysctl.d/99-backendai.conf: the guide's keys plus Set.
type Sysctl struct {
	Enabled bool              `yaml:"enabled"`
	Set     map[string]string `yaml:"set"`
}

// Python is the standalone static Python and one venv per service.
type Python struct {
	Enabled   bool     `yaml:"enabled"`
	Version   string   `yaml:"version"`   // e.g. 3.12.4
	Release   string   `yaml:"release"`   // python-build-standalone tag, e.g. 20240713
	BackendAI string   `yaml:"backendai"` // pick Version/Release by Backend.AI release, e.g. "24.09"
	Triple    string   `yaml:"triple"`
	Flavor    string   `yaml:"flavor"`
	Mirror    string   `yaml:"mirror"` // base URL; <mirror>/<release>/<asset>
	SHA256    string   `yaml:"sha256"` // pin; else checked against the release's SHA256SUMS
	Services  []string `yaml:"services"`
}

// Hosts is the /etc/hosts block between the guide's markers.
type Hosts struct {
	Enabled bool        `yaml:"enabled"`
	Entries []HostEntry `yaml:"entries"` // default: every node with a static address
}

// HostEntry is one line of the block.
type HostEntry struct {
	IP      string   `yaml:"ip"`
	Names   []string `yaml:"names"`
	Comment string   `yaml:"comment"`
}

// Storage is what goes under /vfroot.
type Storage struct {
	Local []string   `yaml:"local"`
	NFS   []NFSMount `yaml:"nfs"`
}

// NFSMount is one /vfroot/<name> NFS mount.
type NFSMount struct {
	Name    string `yaml:"name"`
	Server  string `yaml:"server"`
	Export  string `yaml:"export"`
	Options string `yaml:"options"`
}

// GPU is "Setup accelerators" for NVIDIA.
type GPU struct {
	Enabled        bool   `yaml:"enabled"`
	Driver         string `yaml:"driver"`          // driver branch, e.g. "535"
	CUDA           string `yaml:"cuda"`            // CUDA runtime library version, e.g. "12-2"; "" for none
	Toolkit        bool   `yaml:"toolkit"`         // nvidia-container-toolkit + nvidia-ctk runtime configure
	ToolkitVersion string `yaml:"toolkit_version"` // apt version pin
	Count          int    `yaml:"count"`           // GPUs the node has, for the verifier; 0: at least one
}

// Images are container images to pre-pull.
type Images struct {
	Pull       []string       `yaml:"pull"`
	Registries []RegistryAuth `yaml:"registries"`
}

// RegistryAuth logs in to a registry before pulling. Token is a secret: it is
// only ever written to a 0600 file.
type RegistryAuth struct {
	Registry string `yaml:"registry"`
	Username string `yaml:"username"`
	Token    string `yaml:"token"`
}
