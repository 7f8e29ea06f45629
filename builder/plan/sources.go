package plan

import (
	"strings"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/spec"
)

// PayloadFormat is the payload manifest's format, bumped when its meaning
// changes (2: image refs are ImageKeys). render hands it to the node.
const PayloadFormat = 2

// Payload directories by kind: where a payload carries each kind of
// artifact (builder/payload writes them, the provisioning script reads them).
var PayloadDir = map[string]string{KindDeb: "apt", KindPython: "python", KindImage: "images"}

// ImageArchiveName is the cache and payload name of the docker-load tarball
// of an image reference: "cr.backend.ai/stable/python:3.9" ->
// "image_cr.backend.ai_stable_python_3.9.tar".
func ImageArchiveName(ref string) string {
	return "image_" + strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref) + ".tar"
}

// ImageKey is the normalised form of an image reference, the one the
// payload manifest lists and the node looks up exactly: docker load writes
// tags fully qualified or not, so "docker.io/library/x:1", "library/x:1"
// and "x:1" are one image, and a reference without a tag means ":latest".
func ImageKey(ref string) string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	if !hasDigest {
		if i := strings.LastIndex(name, ":"); i < 0 || strings.Contains(name[i:], "/") {
			name += ":latest"
		}
	}
	name = strings.TrimPrefix(name, "docker.io/")
	name = strings.TrimPrefix(name, "library/")
	if hasDigest {
		return name + "@" + digest
	}
	return name
}

// Source is one thing a node downloads, and where it comes from: online,
// or from the payload disk when the node has "artifacts: payload". It is
// the one list of what bainode fetch gets and bainode payload carries.
type Source struct {
	Step  string `json:"step"`
	Field string `json:"field"`
	Kind  string `json:"kind"`
	// Name is the file name (python, cloud image), the image reference, or
	// the apt repository ("URI suite [components]").
	Name string `json:"name"`
	// URL is the upstream origin (docker://REF for an image).
	URL string `json:"url"`
	// Payload is the path in the payload disk, "" when the node takes it
	// online. A directory for .debs ("apt/": bainode fetch resolves and
	// pins them) and images ("images/": manifest.json names the tarball
	// that carries Key).
	Payload string `json:"payload,omitempty"`
	// SHA256 is set when the site pins it; otherwise fetch takes it from
	// the signed index and the lock records it.
	SHA256 string `json:"sha256,omitempty"`
	// Key is an image's normalised reference (ImageKey).
	Key string `json:"key,omitempty"`
	// Packages are what the node installs from an apt repository.
	Packages []string `json:"packages,omitempty"`
}

// sources fills p.Sources from its steps.
func (p *Plan) sources() {
	carried := p.Artifacts == spec.ArtifactsPayload
	at := func(kind, name string) string {
		if !carried {
			return ""
		}
		return PayloadDir[kind] + "/" + name
	}
	p.Sources = nil
	for _, st := range p.Steps {
		for _, r := range st.Repos {
			s := Source{Step: st.Name, Field: r.Field, Kind: KindDeb, Name: r.String(), URL: r.URI, Payload: at(KindDeb, "")}
			for _, pk := range r.Packages {
				s.Packages = append(s.Packages, pk.Request())
			}
			p.Sources = append(p.Sources, s)
		}
		if len(st.Packages) > 0 {
			// From the target's own archive; a payload must carry them too.
			p.Sources = append(p.Sources, Source{Step: st.Name, Field: st.Field, Kind: KindDeb,
				Name: p.Target.Name + " archive", Payload: at(KindDeb, ""), Packages: st.Packages})
		}
		for _, f := range st.Files {
			s := Source{Step: st.Name, Field: f.Field, Kind: f.Kind, Name: f.Name, URL: f.URL(), SHA256: f.SHA256}
			if f.Kind != KindCloudImage { // the cloud image is what the node boots, not carried
				s.Payload = at(f.Kind, f.Name)
			}
			p.Sources = append(p.Sources, s)
		}
		for _, im := range st.Images {
			p.Sources = append(p.Sources, Source{Step: st.Name, Field: im.Field, Kind: KindImage, Name: im.Ref,
				URL: fetch.ImageURLScheme + im.Ref, Key: im.Key, Payload: at(KindImage, "")})
		}
	}
}

// String is the repository as a sources.list line names it.
func (r AptRepo) String() string {
	s := r.URI + " " + r.Suite
	if len(r.Components) > 0 {
		s += " " + strings.Join(r.Components, " ")
	}
	return s
}
