package bake

import (
	"bytes"
	_ "embed"
	"fmt"

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

// ImageSeed turns a node's rendered seed into the bake seed: the same
// files and user, but provisioning runs only the image steps
// (BAINODE_PHASE=image) and the seal unit is queued to run after
// cloud-final. The hostname key is dropped: the image is no node's.
// marker is written into the user-data as a comment, so a scan of the
// output can prove no copy of it survived.
func ImageSeed(f render.Files, marker string) (render.Files, error) {
	doc, err := parseUserData(f.UserData)
	if err != nil {
		return f, err
	}
	m := doc.Content[0]
	var runcmd, files *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch m.Content[i].Value {
		case "runcmd":
			runcmd = m.Content[i+1]
		case "write_files":
			files = m.Content[i+1]
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
	return out, nil
}
