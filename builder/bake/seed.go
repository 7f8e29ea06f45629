package bake

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/render"
)

//go:embed bainode-seal
var sealScript string

const sealUnit = `[Unit]
Description=bainode bake: seal the image for cloning and power off
After=cloud-final.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/bainode-seal
StandardOutput=journal+console
StandardError=journal+console
`

// Phase values of BAINODE_PHASE, read by overlays/provision/bainode-provision.
const (
	PhaseImage = "image"
	PhaseNode  = "node"
)

// provisionCmd is the runcmd item render writes; ImageSeed rewrites it.
const provisionCmd = "/usr/local/sbin/bainode-provision"

// heldUnits are stopped and masked for the bake's boot only (--runtime:
// under /run, gone at power-off), so no apt run takes the dpkg lock or
// pulls in an upgrade mid-bake; the seal unmasks them and reports their
// state before and after. Their state before is kept in heldFile (tmpfs).
var heldUnits = []string{"apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.service", "apt-daily-upgrade.service", "unattended-upgrades.service"}

const heldFile = "/run/bainode-bake/held"

// holdCmd runs first in bootcmd: cloud-init's init stage, before
// network-online.target, which apt-daily.service waits for.
func holdCmd() string {
	units := strings.Join(heldUnits, " ")
	return `mkdir -p /run/bainode-bake; for u in ` + units + `; do s=$(systemctl is-enabled "$u" 2>/dev/null); echo "$u ${s:-not-found}"; done >` + heldFile +
		`; systemctl mask --runtime ` + units + ` >/dev/null 2>&1; systemctl stop ` + units + ` 2>/dev/null; true`
}

// nodeEnvKeys are provision.env settings that only the node phase reads
// (hosts block, /vfroot); the bake seed leaves them out, so that nodes of
// one role bake the same image (TestNodeEnvKeys checks the script).
var nodeEnvKeys = []string{"HOSTS", "HOSTS_BEGIN", "HOSTS_END", "VFROOT_LOCAL", "NFS_PACKAGES"}

// bakeFinalMessage replaces the node's final_message, which names the host.
const bakeFinalMessage = "bainode bake: image provisioned by cloud-init $VERSION in $UPTIME s"

// ImageSeed turns a node's rendered seed into the bake seed: the same
// files and user, but provisioning runs only the image steps
// (BAINODE_PHASE=image) and the seal unit is queued to run after
// cloud-final. The image is no node's, so nothing node-specific goes in:
// no hostname, final_message naming it, network-config (cloud-init's
// fallback, DHCP on the first NIC, serves the bake), hosts block, verifier
// settings or node-phase settings; the node seed brings all of them.
// marker is written into the user-data as a comment, so a scan of the
// output can prove no copy of it survived.
func ImageSeed(f render.Files, marker string) (render.Files, error) {
	doc, err := parseUserData(f.UserData)
	if err != nil {
		return f, err
	}
	m := doc.Content[0]
	var runcmd, files, bootcmd *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch m.Content[i].Value {
		case "runcmd":
			runcmd = m.Content[i+1]
		case "write_files":
			files = m.Content[i+1]
		case "bootcmd":
			bootcmd = m.Content[i+1]
		case "final_message":
			m.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: bakeFinalMessage}
		case "hostname":
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			i -= 2
		}
	}
	if runcmd == nil || files == nil || len(runcmd.Content) != 1 {
		return f, fmt.Errorf("user-data: want one runcmd item (%s) and write_files", provisionCmd)
	}
	var item []string
	if err := runcmd.Content[0].Decode(&item); err != nil || len(item) != 1 || item[0] != provisionCmd {
		return f, fmt.Errorf("user-data: runcmd is not [%s]", provisionCmd)
	}
	// The seal job is queued first and waits for cloud-final (After=), so
	// it also runs when provisioning fails, and then reports the failure.
	cmd := fmt.Sprintf("systemctl start --no-block bainode-seal.service; BAINODE_PHASE=%s exec %s", PhaseImage, provisionCmd)
	var newRun yaml.Node
	if err := newRun.Encode([]any{[]string{"sh", "-c", cmd}}); err != nil {
		return f, err
	}
	*runcmd = newRun
	hold := &yaml.Node{}
	if err := hold.Encode([]string{"sh", "-c", holdCmd()}); err != nil {
		return f, err
	}
	if bootcmd == nil {
		bootcmd = &yaml.Node{Kind: yaml.SequenceNode}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "bootcmd"}, bootcmd)
	}
	bootcmd.Content = append([]*yaml.Node{hold}, bootcmd.Content...)
	keep := files.Content[:0]
	for _, it := range files.Content {
		switch p := fileItemPath(it); {
		case p == provisionEnv:
			if err := dropEnvKeys(it, nodeEnvKeys); err != nil {
				return f, err
			}
		case slices.Contains(nodeFiles, p):
			continue
		}
		keep = append(keep, it)
	}
	files.Content = keep
	for _, wf := range []map[string]string{
		{"path": "/usr/local/sbin/bainode-seal", "owner": "root:root", "permissions": "0755", "content": sealScript},
		{"path": "/etc/systemd/system/bainode-seal.service", "owner": "root:root", "permissions": "0644", "content": sealUnit},
	} {
		var n yaml.Node
		if err := n.Encode(wf); err != nil {
			return f, err
		}
		files.Content = append(files.Content, &n)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#cloud-config\n# bainode bake seed %s\n", marker)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return f, err
	}
	enc.Close()
	out := f
	out.UserData = b.Bytes()
	// A new instance for the bake: each clone's seed then is another one.
	// (Not named after marker: instance ids name directories, which ext4
	// journals, so they could outlive the seal in the journal.)
	out.MetaData = []byte("instance-id: bainode-bake\nlocal-hostname: bainode-bake\n")
	out.NetworkConfig = nil
	return out, nil
}

// dropEnvKeys removes the KEY=... lines of keys from a write_files item's
// content.
func dropEnvKeys(item *yaml.Node, keys []string) error {
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		if k.Value == "encoding" {
			return fmt.Errorf("user-data: %s is encoded (%s); bake reads it as text", provisionEnv, v.Value)
		}
	}
	for i := 0; i+1 < len(item.Content); i += 2 {
		if item.Content[i].Value != "content" {
			continue
		}
		v := item.Content[i+1]
		var lines []string
		for _, l := range strings.SplitAfter(v.Value, "\n") {
			k, _, ok := strings.Cut(l, "=")
			if ok && slices.Contains(keys, k) {
				continue
			}
			lines = append(lines, l)
		}
		v.Value = strings.Join(lines, "")
		v.Style = yaml.LiteralStyle
		return nil
	}
	return fmt.Errorf("user-data: %s has no content", provisionEnv)
}
