package autoinstall

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/spec"

	"github.com/lablup/bainode/builder/internal/golden"
)

func TestAutoinstallGolden(t *testing.T) {
	ud, err := os.ReadFile("testdata/cloud-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := os.ReadFile("testdata/network-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range spec.Targets {
		if _, err := For(target); err != nil {
			continue
		}
		// A late command with the quotes and ';' a payload copy has.
		got, err := Wrap(target, ud, nc, "set -e; mkdir -p /target/var/x; cat '/cdrom/a b' > /target/var/x/y")
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		golden.Check(t, filepath.Join("testdata", "golden", target+".yaml"), got)
		checkSubiquityFacts(t, target, got)
	}
}

// subiquityKeys are the autoinstall v1 keys of the oldest subiquity each
// series' ISOs ship (cloud-init-facts §7.2: tag 20.04.1 for 20.04; 22.04
// GA has the 21.08.2 set at least; 24.04's HEAD list is the whole schema,
// which rejects anything else).
var subiquityKeys = map[string][]string{
	"20.04.1": {"version", "early-commands", "late-commands", "error-commands", "locale", "keyboard", "network", "proxy", "apt", "storage", "identity", "ssh", "snaps", "debconf-selections", "packages", "user-data", "reporting", "refresh-installer"},
}

func init() {
	k2108 := append(slices.Clone(subiquityKeys["20.04.1"]), "updates", "timezone", "kernel")
	subiquityKeys["21.08.2"] = k2108
	subiquityKeys["head"] = append(slices.Clone(k2108), "drivers", "shutdown", "ubuntu-advantage",
		"active-directory", "codecs", "interactive-sections", "kernel-crash-dumps", "oem", "source", "ubuntu-pro", "zdevs")
}

// checkSubiquityFacts reads a rendered autoinstall the way subiquity does
// and checks it against the facts, independently of the renderer's table.
func checkSubiquityFacts(t *testing.T, target string, doc []byte) {
	t.Helper()
	if !bytes.HasPrefix(doc, []byte("#cloud-config\n")) {
		t.Errorf("%s: not a #cloud-config document (20.04 reads autoinstall only from cloud-config)", target)
	}
	var top map[string]any
	if err := yaml.Unmarshal(doc, &top); err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	if len(top) != 1 {
		t.Errorf("%s: top-level keys %v: anything but autoinstall configures the live installer", target, keys(top))
	}
	ai, _ := top["autoinstall"].(map[string]any)
	if ai["version"] != 1 {
		t.Errorf("%s: version %v, want 1", target, ai["version"])
	}
	known := map[string]string{"ubuntu-20.04": "20.04.1", "ubuntu-22.04": "21.08.2", "ubuntu-24.04": "head", "ubuntu-26.04": "head"}[target]
	for k := range ai {
		if !slices.Contains(subiquityKeys[known], k) {
			t.Errorf("%s: key %s is not in subiquity %s's schema", target, k, known)
		}
	}
	if _, ok := ai["identity"]; ok {
		t.Errorf("%s: identity replaces user-data's users before subiquity 21.12.1", target)
	}
	udoc, _ := ai["user-data"].(map[string]any)
	if _, ok := udoc["users"]; !ok {
		t.Errorf("%s: user-data without users needs an identity section", target)
	}
	layout, _ := ai["storage"].(map[string]any)["layout"].(map[string]any)
	if layout["name"] != "direct" {
		t.Errorf("%s: storage layout %v; 20.04's lvm default makes a 4 GiB root", target, layout["name"])
	}
	if ssh, _ := ai["ssh"].(map[string]any); ssh["install-server"] != true {
		t.Errorf("%s: ssh.install-server is %v (subiquity's default is no server)", target, ssh["install-server"])
	}
	net, _ := ai["network"].(map[string]any)
	_, nested := net["network"]
	if nested != (target == "ubuntu-20.04") {
		t.Errorf("%s: network nested twice: %v; 20.04 GA needs it, the rest take the plain form", target, nested)
	}
}

func keys(m map[string]any) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	slices.Sort(k)
	return k
}

func TestAutoinstallRefusals(t *testing.T) {
	ud, _ := os.ReadFile("testdata/cloud-config.yaml")
	for _, c := range []struct {
		target string
		ud     string
		want   string
	}{
		{"debian-12", string(ud), "Ubuntu live-server"},
		{"ubuntu-20.04", "Content-Type: multipart/mixed\n", "not a #cloud-config"},
		{"ubuntu-20.04", "#cloud-config\nhostname: x\n", "no users"},
	} {
		_, err := Wrap(c.target, []byte(c.ud), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: err %v, want %q", c.target, c.ud[:10], err, c.want)
		}
	}
}

// The generic autoinstall is YAML whose early command is valid shell that
// fetches the node's config from the server it was given.
func TestGeneric(t *testing.T) {
	var doc struct {
		Autoinstall map[string]any `yaml:"autoinstall"`
	}
	gen, err := Generic("http://10.0.2.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(gen, &doc); err != nil {
		t.Fatalf("generic: %v\n%s", err, gen)
	}
	cmds, _ := doc.Autoinstall["early-commands"].([]any)
	if len(cmds) != 1 {
		t.Fatalf("generic early-commands: %v", doc.Autoinstall["early-commands"])
	}
	script := cmds[0].(string)
	if !strings.Contains(script, "'http://10.0.2.2:8080'") || !strings.Contains(script, "/autoinstall.yaml") {
		t.Errorf("generic early command:\n%s", script)
	}
	if _, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v\n%s", err, out)
		}
	}
	for _, bad := range []string{"", "http://x/'; rm -rf /", "http://a b"} {
		if _, err := Generic(bad); err == nil {
			t.Errorf("Generic(%q): no error", bad)
		}
	}
}
