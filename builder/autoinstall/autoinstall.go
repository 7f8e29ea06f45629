// Package autoinstall turns a node's cloud-config into the user-data of
// Ubuntu's live installer (subiquity autoinstall v1). Network boots (pxe)
// and remastered ISOs (iso) both use it, so a node installs the same way
// whichever medium starts the installer.
package autoinstall

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Series is what bainode knows of one Ubuntu release's live installer.
type Series struct {
	// MinRAMMiB is what a network boot of the live installer needs (the
	// ISO lives in RAM; field reports: 22.04 crashes at 1-2 GB, 24.04
	// fails at 4 GB).
	MinRAMMiB int
	// Keys are the autoinstall keys of the oldest subiquity the series'
	// ISOs ship; 24.04+ refuses any other key.
	Keys []string
	// DoubleNetwork: subiquity 20.04 GA wants "network: network: ...";
	// later ones read both forms.
	DoubleNetwork bool
}

var series = map[string]Series{
	"ubuntu-20.04": {4096, []string{"version", "storage", "ssh", "network", "user-data", "late-commands"}, true},
	"ubuntu-22.04": {4096, []string{"version", "storage", "ssh", "network", "user-data", "late-commands"}, false},
	"ubuntu-24.04": {8192, []string{"version", "storage", "ssh", "network", "user-data", "late-commands"}, false},
	"ubuntu-26.04": {8192, []string{"version", "storage", "ssh", "network", "user-data", "late-commands"}, false},
}

// For returns the series of a target, or an error naming it.
func For(target string) (Series, error) {
	s, ok := series[target]
	if !ok {
		return Series{}, fmt.Errorf("install mode autoinstall needs an Ubuntu live-server target, not %s", target)
	}
	return s, nil
}

// base is the part of every autoinstall bainode writes, under
// "autoinstall:":
//   - storage layout "direct": 20.04's default LVM root is 4 GiB;
//   - ssh server installed (subiquity's default is none), no passwords;
//   - no identity: before subiquity 21.12.1 (all 20.04 ISOs) identity's
//     user replaces user-data's users list, losing the operator account.
const base = `version: 1
storage:
  layout:
    name: direct
ssh:
  install-server: true
  allow-pw: false
`

// Wrap turns a node's cloud-config into the user-data subiquity reads:
// autoinstall v1 (see base) with the node's cloud-config as autoinstall's
// user-data, which cloud-init applies on the installed system's first
// boot, and its network-config as the installed system's netplan
// (subiquity turns cloud-init's network off in the target), nested twice
// on 20.04. late are shell commands subiquity runs after the install
// (sh -c, the target mounted at /target). Only keys the series' oldest
// subiquity knows are written.
func Wrap(target string, userData, networkConfig []byte, late ...string) ([]byte, error) {
	s, err := For(target)
	if err != nil {
		return nil, err
	}
	ud, err := plain(userData)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(ud, []byte("#cloud-config\n")) {
		return nil, fmt.Errorf("autoinstall: user-data is not a #cloud-config document")
	}
	var orig map[string]any
	if err := yaml.Unmarshal(ud, &orig); err != nil {
		return nil, fmt.Errorf("autoinstall: user-data: %v", err)
	}
	if _, ok := orig["users"]; !ok {
		return nil, fmt.Errorf("autoinstall: user-data has no users; subiquity would then want an identity section")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#cloud-config\n# bainode: subiquity autoinstall v1 for %s. Keys outside autoinstall would\n# configure the live installer; the node's cloud-config is autoinstall.user-data.\n", target)
	b.WriteString("autoinstall:\n")
	indent(&b, []byte(base), "  ")
	if nc := bytes.TrimSpace(networkConfig); len(nc) > 0 {
		b.WriteString("  network:\n")
		ind := "    "
		if s.DoubleNetwork {
			b.WriteString("    network:\n")
			ind = "      "
		}
		indent(&b, networkConfig, ind)
	}
	if len(late) > 0 {
		b.WriteString("  late-commands:\n")
		for _, c := range late {
			q, err := yaml.Marshal(c)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "    - %s", q)
		}
	}
	b.WriteString("  user-data:\n")
	indent(&b, ud, "    ")

	// Check the nesting by reading it back: the documents must be the same.
	var got struct {
		Autoinstall map[string]any `yaml:"autoinstall"`
	}
	if err := yaml.Unmarshal(b.Bytes(), &got); err != nil {
		return nil, fmt.Errorf("autoinstall: wrapped user-data does not parse: %v", err)
	}
	if !reflect.DeepEqual(got.Autoinstall["user-data"], orig) {
		return nil, fmt.Errorf("autoinstall: user-data changed when nested")
	}
	cmds, _ := got.Autoinstall["late-commands"].([]any)
	for i, c := range cmds {
		if i >= len(late) || c != late[i] {
			cmds = nil
		}
	}
	if len(cmds) != len(late) {
		return nil, fmt.Errorf("autoinstall: late-commands changed when written")
	}
	for k := range got.Autoinstall {
		if !slices.Contains(s.Keys, k) {
			return nil, fmt.Errorf("autoinstall: key %s is unknown to %s's subiquity", k, target)
		}
	}
	return b.Bytes(), nil
}

// Generic is one autoinstall for a whole fleet: an early command fetches
// the machine's cloud-config from bainoded by MAC (then DMI serial) and
// writes the full /autoinstall.yaml, which subiquity re-reads after
// early-commands (from 20.04.1 on).
func Generic(server string) ([]byte, error) {
	server = strings.TrimRight(server, "/")
	if server == "" || strings.ContainsAny(server, "'\"\\ \n$`") {
		return nil, fmt.Errorf("server URL %q: empty or holds quotes, spaces or shell characters", server)
	}
	script := `set -e
u='` + server + `'
for k in $(cat /sys/class/net/*/address | tr : - | grep -v '^00-00-00-00-00-00$') $(cat /sys/class/dmi/id/product_serial 2>/dev/null | tr -c 'A-Za-z0-9._-\n' _); do
  if curl -fsS --retry 3 "$u/nocloud/$k/user-data" -o /tmp/bainode-user-data; then
    { printf '%s' "$BAINODE_HEAD"; printf 'user-data:\n'; sed -e '/^#cloud-config/d' -e 's/^/  /' /tmp/bainode-user-data; } > /autoinstall.yaml
    exit 0
  fi
done
echo "bainode: $u has no config for this machine" >&2
exit 1
`
	var b bytes.Buffer
	b.WriteString("#cloud-config\nautoinstall:\n")
	indent(&b, []byte(base), "  ")
	b.WriteString("  early-commands:\n    - |\n")
	indent(&b, []byte("BAINODE_HEAD='"+base+"'\n"+script), "      ")
	return b.Bytes(), nil
}

// indent copies doc with every non-empty line indented; comments and
// blank lines are fine at any depth in YAML.
func indent(b *bytes.Buffer, doc []byte, ind string) {
	for _, line := range strings.SplitAfter(strings.TrimRight(string(doc), "\n")+"\n", "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString(ind)
		}
		b.WriteString(line)
	}
}

// plain undoes the gzip render applies to large user-data.
func plain(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		return b, nil
	}
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, 16<<20))
}
