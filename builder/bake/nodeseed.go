package bake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/render"
)

// nodeFiles are the write_files that belong to one node, not to the image:
// a baked image gets them from its node seed.
var nodeFiles = []string{"/etc/bainode/hosts.block", "/etc/bainode/verify.env", provisionEnv}

// provisionEnv is in both: the bake seed carries it without the node-phase
// settings (nodeEnvKeys), the node seed whole.
const provisionEnv = "/etc/bainode/provision.env"

// imageKeys are the cloud-config keys whose work the image already carries.
var imageKeys = []string{"bootcmd", "groups", "users"}

// PlanHash hashes the image part of a node's rendered seed (ImageSeed
// leaves out what is the node's: hostname, network, hosts block, node-phase
// settings), without comments: nodes of one role share it, so a node seed
// can be checked against a baked image's manifest.
func PlanHash(f render.Files) (string, error) {
	s, err := ImageSeed(f, "")
	if err != nil {
		return "", err
	}
	doc, err := parseUserData(s.UserData)
	if err != nil {
		return "", err
	}
	stripComments(doc)
	b, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// NodeSeed turns a node's rendered seed into the thin seed for a baked
// image: hostname, the node's files (hosts block, provision and verifier
// settings) and the node phase of provisioning (hosts, /vfroot, the
// verifier). The user, packages and scripts are in the image already.
func NodeSeed(f render.Files) (render.Files, error) {
	doc, err := parseUserData(f.UserData)
	if err != nil {
		return f, err
	}
	m := doc.Content[0]
	var out []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case slices.Contains(imageKeys, k.Value):
			continue
		case k.Value == "write_files":
			keep := v.Content[:0]
			for _, it := range v.Content {
				if slices.Contains(nodeFiles, fileItemPath(it)) {
					keep = append(keep, it)
				}
			}
			v.Content = keep
		case k.Value == "runcmd":
			var n yaml.Node
			cmd := fmt.Sprintf("BAINODE_PHASE=%s exec %s", PhaseNode, provisionCmd)
			if err := n.Encode([]any{[]string{"sh", "-c", cmd}}); err != nil {
				return f, err
			}
			v = &n
		}
		out = append(out, k, v)
	}
	m.Content = out
	var b bytes.Buffer
	b.WriteString("#cloud-config\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return f, err
	}
	enc.Close()
	f.UserData = b.Bytes()
	return f, nil
}

// CheckPlan refuses a node seed for an image baked from another plan.
func CheckPlan(m Manifest, f render.Files) error {
	h, err := PlanHash(f)
	if err != nil {
		return err
	}
	if m.Inputs.Plan == "" {
		return errors.New("the image manifest has no plan hash (baked by an older bainode?)")
	}
	if h != m.Inputs.Plan {
		return fmt.Errorf("the site's plan for this node (%s) is not the one the image was baked from (%s): rebake, or use the site it was baked from", h[:16], m.Inputs.Plan[:16])
	}
	return nil
}

func parseUserData(ud []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(ud, &doc); err != nil {
		return nil, fmt.Errorf("user-data: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("user-data: not a cloud-config mapping")
	}
	return &doc, nil
}

func fileItemPath(it *yaml.Node) string {
	for i := 0; i+1 < len(it.Content); i += 2 {
		if it.Content[i].Value == "path" {
			return it.Content[i+1].Value
		}
	}
	return ""
}

func stripComments(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		stripComments(c)
	}
}
