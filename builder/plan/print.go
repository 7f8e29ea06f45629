package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the plans as one indented JSON array.
func WriteJSON(w io.Writer, ps []*Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ps)
}

// WriteText writes the plans for a reader: per node, the image steps, the
// node steps, and every download with where it comes from.
func WriteText(w io.Writer, ps []*Plan) error {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("\n")
		}
		writePlan(&b, p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writePlan(b *strings.Builder, p *Plan) {
	fmt.Fprintf(b, "%s: role %s, target %s (%s %s), %s, artifacts %s\n",
		p.Node, p.Role, p.Target.Name, p.Target.Family, p.Target.Codename, p.Arch, p.Artifacts)
	for _, where := range []Where{Image, Node} {
		switch where {
		case Image:
			b.WriteString("\nimage steps (baked by bainode bake; without an image, run at first boot):\n")
		case Node:
			b.WriteString("\nnode steps (run on the node at first boot):\n")
		}
		for _, st := range p.Steps {
			if st.Where != where {
				continue
			}
			fmt.Fprintf(b, "  %-12s %s\n", st.Name, st.Field)
			for _, r := range st.Repos {
				fmt.Fprintf(b, "    %-10s %s\n", "apt repo", r)
				fmt.Fprintf(b, "    %-10s %s\n", "key", r.Fingerprint)
				fmt.Fprintf(b, "    %-10s %s\n", "install", requestsOf(r.Packages))
			}
			if len(st.Packages) > 0 {
				fmt.Fprintf(b, "    %-10s %s (from the target's archive)\n", "install", strings.Join(st.Packages, " "))
			}
			for _, f := range st.Files {
				fmt.Fprintf(b, "    %-10s %s\n", "file", f.Name)
			}
			for _, im := range st.Images {
				fmt.Fprintf(b, "    %-10s %s (%s)\n", "image", im.Ref, im.Platform)
			}
			for _, path := range st.Paths {
				fmt.Fprintf(b, "    %-10s %s\n", "writes", path)
			}
		}
	}
	if len(p.Sources) == 0 {
		b.WriteString("\ndownloads: none\n")
		return
	}
	b.WriteString("\ndownloads (where each comes from):\n")
	for _, s := range p.Sources {
		fmt.Fprintf(b, "  %-12s %s %s\n", s.Step, s.Kind, s.Name)
		switch {
		case s.URL != "":
			fmt.Fprintf(b, "    %-10s %s\n", "online", s.URL)
		case s.Payload == "":
			fmt.Fprintf(b, "    %-10s the node's own apt sources\n", "online")
		}
		switch {
		case s.Payload != "" && s.Key != "":
			fmt.Fprintf(b, "    %-10s %s (the tarball manifest.json lists for %s)\n", "payload", s.Payload, s.Key)
		case s.Payload != "":
			fmt.Fprintf(b, "    %-10s %s\n", "payload", s.Payload)
		}
		switch {
		case s.SHA256 != "":
			fmt.Fprintf(b, "    %-10s %s (pinned by the site)\n", "sha256", s.SHA256)
		case s.Kind == KindDeb && s.URL == "":
			fmt.Fprintf(b, "    %-10s checked by apt against the archive's signed index\n", "sha256")
		case s.Kind == KindDeb:
			fmt.Fprintf(b, "    %-10s from the signed index; bainode fetch pins it in the lock\n", "sha256")
		case s.Kind == KindImage:
			fmt.Fprintf(b, "    %-10s the digest bainode fetch pins in the lock\n", "sha256")
		default:
			fmt.Fprintf(b, "    %-10s from SHA256SUMS; bainode fetch pins it in the lock\n", "sha256")
		}
	}
}

func requestsOf(ps []AptPackage) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Request())
	}
	return strings.Join(out, " ")
}
