package payload

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/fetch"
	install "github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// Fetch and carry: everything the plans' image and node steps take from a
// payload is in the payload's manifest, where the node looks for it: the
// Python tarball at its path, every package in the apt repository, and
// every image under its normalised reference (the tarball of "busybox" is
// tagged docker.io/library/busybox:latest, as docker save writes it).
func TestPayloadCarriesThePlan(t *testing.T) {
	des, err := fs.ReadDir(templates.FS, "examples")
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		ex := strings.TrimSuffix(de.Name(), ".yaml")
		t.Run(ex, func(t *testing.T) {
			b, _ := fs.ReadFile(templates.FS, "examples/"+de.Name())
			site, err := spec.Parse(de.Name(), b)
			if err != nil {
				t.Fatal(err)
			}
			var ps []*install.Plan
			for i := range site.Nodes {
				n := &site.Nodes[i]
				n.Artifacts = spec.ArtifactsPayload
				if i == 0 {
					n.Images.Pull = append(n.Images.Pull, "busybox")
				}
				p, err := install.For(n, install.Options{})
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}

			// Upstream as bainode fetch leaves it, made from the plans.
			tmp := t.TempDir()
			cache, err := fetch.OpenCache(filepath.Join(tmp, "cache"))
			if err != nil {
				t.Fatal(err)
			}
			debDir := filepath.Join(tmp, "debs")
			os.MkdirAll(debDir, 0o755)
			made := map[string]bool{}
			for _, p := range ps {
				for _, s := range p.Sources {
					if made[s.Step+" "+s.Kind+" "+s.Name] {
						continue
					}
					made[s.Step+" "+s.Kind+" "+s.Name] = true
					switch s.Kind {
					case install.KindPython:
						f := filepath.Join(tmp, s.Name)
						os.WriteFile(f, []byte("python "+s.Name), 0o644)
						if _, err := cache.Import(f, fetch.Artifact{Name: s.Name, URL: s.URL, Kind: s.Kind}); err != nil {
							t.Fatal(err)
						}
					case install.KindImage:
						tag := s.Name
						if tag == "busybox" {
							tag = "docker.io/library/busybox:latest"
						}
						f := filepath.Join(tmp, install.ImageArchiveName(s.Name))
						writeDockerArchive(t, f, tag, []string{"/x"}, map[string][]byte{"x": []byte(s.Name)}, nil)
						if _, err := cache.Import(f, fetch.Artifact{Name: install.ImageArchiveName(s.Name), URL: s.URL, Kind: s.Kind}); err != nil {
							t.Fatal(err)
						}
					case install.KindDeb:
						for _, req := range s.Packages {
							name, version, _ := strings.Cut(req, "=")
							if version == "" {
								version = "1.0"
							}
							if !made[name] {
								made[name] = true
								makeDeb(t, debDir, name, version, p.Arch, "", "gzip")
							}
						}
					}
				}
			}

			items, err := ForPlans(ps, Sources{Cache: cache, DebDirs: []string{debDir}})
			if err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(tmp, "payload.img")
			if err := Build(t.Context(), img, cache, items, Options{}); err != nil {
				t.Fatal(err)
			}
			m := readManifestBytes(t, debugfsCat(t, img, "/"+ManifestName))

			for _, p := range ps {
				for _, s := range p.Sources {
					switch {
					case s.Kind == install.KindCloudImage:
						if s.Payload != "" {
							t.Errorf("%s: the cloud image has a payload path %s", p.Node, s.Payload)
						}
					case s.Payload == "":
						t.Errorf("%s: %s %s: no payload path on a payload node", p.Node, s.Kind, s.Name)
					case s.Kind == install.KindPython:
						if !slices.ContainsFunc(m.Files, func(f ManifestFile) bool { return f.Path == s.Payload }) ||
							!slices.Contains(m.Python, s.Payload) {
							t.Errorf("%s: %s: manifest lacks %s", p.Node, s.Field, s.Payload)
						}
					case s.Kind == install.KindImage:
						if !slices.ContainsFunc(m.Images, func(im Image) bool {
							return strings.HasPrefix(im.File, s.Payload) && slices.Contains(im.Refs, s.Key)
						}) {
							t.Errorf("%s: %s: no image in the manifest under %s: %+v", p.Node, s.Field, s.Key, m.Images)
						}
					case s.Kind == install.KindDeb:
						for _, req := range s.Packages {
							name, version, _ := strings.Cut(req, "=")
							if !slices.ContainsFunc(m.Packages, func(pk Package) bool {
								return pk.Package == name && (version == "" || pk.Version == version) && strings.HasPrefix(pk.File, s.Payload)
							}) {
								t.Errorf("%s: %s: the payload's apt repository lacks %s", p.Node, s.Field, req)
							}
						}
					default:
						t.Errorf("%s: %s: a source of kind %q the test does not know", p.Node, s.Field, s.Kind)
					}
				}
			}
		})
	}
}
