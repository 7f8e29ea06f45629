package artifacts

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/internal/testsrv"
	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

var dockerDebs = []deb{
	{"containerd.io", "1.6.24-1", ""},
	{"containerd.io", "1.7.25-1", ""},
	{"docker-ce", "5:24.0.7-1~ubuntu.20.04~focal", "containerd.io (>= 1.6.24), docker-ce-cli, iptables"},
	{"docker-ce", "5:28.1.1-1~ubuntu.20.04~focal", "containerd.io (>= 1.7.24), docker-ce-cli, iptables"},
	{"docker-ce-cli", "5:24.0.7-1~ubuntu.20.04~focal", ""},
	{"docker-ce-cli", "5:28.1.1-1~ubuntu.20.04~focal", ""},
	{"docker-ce-rootless-extras", "5:28.1.1-1~ubuntu.20.04~focal", ""},
	{"docker-buildx-plugin", "0.23.0-1~ubuntu.20.04~focal", ""},
	{"docker-compose-plugin", "2.35.1-1~ubuntu.20.04~focal", ""},
}

var nvidiaDebs = []deb{
	{"nvidia-container-toolkit", "1.14.3-1", "nvidia-container-toolkit-base (= 1.14.3-1), libnvidia-container-tools (>= 1.14.3-1), libnvidia-container-tools (<< 2.0.0)"},
	{"nvidia-container-toolkit", "1.17.0-1", "nvidia-container-toolkit-base (= 1.17.0-1), libnvidia-container-tools (>= 1.17.0-1), libnvidia-container-tools (<< 2.0.0)"},
	{"nvidia-container-toolkit-base", "1.14.3-1", ""},
	{"nvidia-container-toolkit-base", "1.17.0-1", ""},
	{"libnvidia-container-tools", "1.14.3-1", "libnvidia-container1 (>= 1.14.3-1)"},
	{"libnvidia-container-tools", "1.17.0-1", "libnvidia-container1 (>= 1.17.0-1)"},
	{"libnvidia-container1", "1.14.3-1", "libc6 (>= 2.17)"},
	{"libnvidia-container1", "1.17.0-1", "libc6 (>= 2.17)"},
}

// The newest of each, which is what an unpinned site gets.
var (
	newestDocker = []string{"containerd.io_1.7.25-1_amd64.deb", "docker-buildx-plugin_0.23.0-1~ubuntu.20.04~focal_amd64.deb",
		"docker-ce-cli_28.1.1-1~ubuntu.20.04~focal_amd64.deb", "docker-ce_28.1.1-1~ubuntu.20.04~focal_amd64.deb",
		"docker-compose-plugin_2.35.1-1~ubuntu.20.04~focal_amd64.deb"}
	newestToolkit = []string{"libnvidia-container-tools_1.17.0-1_amd64.deb", "libnvidia-container1_1.17.0-1_amd64.deb",
		"nvidia-container-toolkit-base_1.17.0-1_amd64.deb", "nvidia-container-toolkit_1.17.0-1_amd64.deb"}
)

const cloudImage = "focal-server-cloudimg-amd64.img"

// world is upstream, on 127.0.0.1: a python-build-standalone release, the
// Docker and NVIDIA apt repositories, Ubuntu's cloud images and a registry
// holding the guide's images, reached through fetch's mirrors.
type world struct {
	f       *testsrv.Files
	reg     *testsrv.Registry
	signer  *openpgp.Entity
	pyAsset string
	pyPath  string
	images  map[string]v1.Image // by the site's reference
	o       Options
}

func newWorld(t *testing.T) *world {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the user's
	w := &world{f: testsrv.NewFiles(t, nil), reg: testsrv.NewRegistry(t, "", ""), signer: testsrv.Key(t, "upstream"), images: map[string]v1.Image{}}

	py := spec.Defaults("all-in-one").Python
	w.pyAsset = payload.PythonAsset(py)
	w.pyPath = "/python/" + py.Release + "/" + w.pyAsset
	tgz := testsrv.RandomBytes(1, 5000)
	w.f.Put(w.pyPath, tgz)
	w.f.Put("/python/"+py.Release+"/SHA256SUMS", fmt.Appendf(nil, "%s  %s\n%s  cpython-3.0.0+%s-other.tar.gz\n",
		testsrv.SumHex(tgz), w.pyAsset, testsrv.SumHex(nil), py.Release))

	img := testsrv.RandomBytes(2, 7000)
	sums := fmt.Appendf(nil, "%s *%s\n%s *focal-server-cloudimg-arm64.img\n", testsrv.SumHex(img), cloudImage, testsrv.SumHex(nil))
	w.f.Put("/cloud/focal/current/"+cloudImage, img)
	w.f.Put("/cloud/focal/current/SHA256SUMS", sums)
	w.f.Put("/cloud/focal/current/SHA256SUMS.gpg", testsrv.DetachSign(t, w.signer, sums))

	serveAptRepo(t, w.f, "/docker/linux/ubuntu", "focal", w.signer, dockerDebs)
	serveAptRepo(t, w.f, "/nvidia/libnvidia-container/stable/deb/amd64", "/", w.signer, nvidiaDebs)

	for _, ref := range spec.Defaults("agent").Images.Pull {
		repoTag, ok := strings.CutPrefix(ref, "cr.backend.ai/")
		if !ok {
			t.Fatalf("guide image %s is not on cr.backend.ai", ref)
		}
		w.images[ref] = w.reg.Push(t, repoTag, 2)
	}

	kr := openpgp.EntityList{w.signer}
	w.o = Options{
		Fetch: fetch.Options{Retries: -1, Jobs: 3, Mirrors: map[string]string{
			"https://github.com/astral-sh/python-build-standalone/releases/download": w.f.URL + "/python",
			"https://download.docker.com":                                            w.f.URL + "/docker",
			"https://nvidia.github.io":                                               w.f.URL + "/nvidia",
			"https://cloud-images.ubuntu.com":                                        w.f.URL + "/cloud",
			"https://cr.backend.ai":                                                  w.reg.URL,
		}},
		CloudImage: true,
		Keys:       map[string]openpgp.EntityList{KeyDocker: kr, KeyNVIDIA: kr, KeyCloudImage: kr},
	}
	return w
}

func example(t *testing.T, name string) *spec.Site {
	t.Helper()
	b, err := fs.ReadFile(templates.FS, "examples/"+name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	site, err := spec.Parse(name, b)
	if err != nil {
		t.Fatal(err)
	}
	return site
}

func parseSite(t *testing.T, y string) *spec.Site {
	t.Helper()
	site, err := spec.Parse("test", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return site
}

func openCache(t *testing.T) *fetch.Cache {
	t.Helper()
	c, err := fetch.OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func names(arts []fetch.Artifact) []string {
	var out []string
	for _, a := range arts {
		out = append(out, a.Name)
	}
	sort.Strings(out)
	return out
}

func sorted(s ...[]string) []string {
	out := slices.Concat(s...)
	sort.Strings(out)
	return out
}

func TestForSiteExamplesFillWhatPayloadLooksFor(t *testing.T) {
	w := newWorld(t)
	var images []string
	for ref := range w.images {
		images = append(images, payload.ImageArchiveName(ref))
	}
	des, err := fs.ReadDir(templates.FS, "examples")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"single-node": sorted([]string{w.pyAsset, cloudImage}, newestDocker, images),
		"cluster":     sorted([]string{w.pyAsset, cloudImage}, newestDocker, newestToolkit, images),
		"vm-test":     nil, // Debian, everything off: nothing to fetch
	}
	if len(des) != len(want) {
		t.Fatalf("examples %v: the test knows %d", des, len(want))
	}
	for _, de := range des {
		ex := strings.TrimSuffix(de.Name(), ".yaml")
		t.Run(ex, func(t *testing.T) {
			site := example(t, ex)
			c := openCache(t)
			var warns []string
			o := w.o
			o.Warn = func(m string) { warns = append(warns, m) }
			reqs, err := ForSite(context.Background(), site, nil, o)
			if err != nil {
				t.Fatal(err)
			}
			// Every download of the nodes' plans is requested for the node.
			for i := range site.Nodes {
				p, err := plan.For(&site.Nodes[i], plan.Options{CloudImage: o.CloudImage})
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range p.Sources {
					if s.URL == "" {
						continue // the target's own archive: --debs brings them
					}
					var names []string
					switch s.Kind {
					case plan.KindDeb:
						for _, req := range s.Packages {
							name, _, _ := strings.Cut(req, "=")
							names = append(names, name+"_")
						}
					case plan.KindImage:
						names = []string{payload.ImageArchiveName(s.Name)}
					default:
						names = []string{s.Name}
					}
					for _, want := range names {
						if !slices.ContainsFunc(reqs, func(r Request) bool {
							return strings.HasPrefix(r.Artifact.Name, want) && strings.HasPrefix(r.Artifact.URL, s.URL) &&
								r.Artifact.Kind == s.Kind && slices.Contains(r.Nodes, p.Node)
						}) {
							t.Errorf("%s: %s: the plan's %s %s (%s) is not requested", p.Node, s.Field, s.Kind, want, s.URL)
						}
					}
				}
			}
			for _, r := range reqs {
				if r.Image == nil && !r.Artifact.Pinned() {
					t.Errorf("%s (%s) is not pinned by ForSite", r.Artifact.Name, r.Where())
				}
				if len(r.Nodes) == 0 || r.Field == "" {
					t.Errorf("%s: no nodes or field", r.Artifact.Name)
				}
			}
			arts, err := Fetch(context.Background(), c, reqs, w.o.Fetch)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(arts); !slices.Equal(got, want[ex]) {
				t.Errorf("fetched\n%v\nwant\n%v", got, want[ex])
			}
			if ex == "vm-test" && !slices.ContainsFunc(warns, func(m string) bool { return strings.Contains(m, "no cloud image for debian-12") }) {
				t.Errorf("warnings %q", warns)
			}
			lock := fetch.NewLock(arts)
			if probs := c.Check(lock); len(probs) != 0 {
				t.Errorf("cache check: %v", probs)
			}
			for _, a := range arts {
				if !a.Pinned() || a.Size == 0 || a.Kind == "" {
					t.Errorf("lock entry %+v", a)
				}
			}

			// What builder/payload looks for, by the names it uses.
			var nodes []*spec.Node
			for i := range site.Nodes {
				nodes = append(nodes, &site.Nodes[i])
			}
			for _, n := range nodes {
				if n.Python.Enabled {
					if _, ok := c.Path(payload.PythonAsset(n.Python)); !ok {
						t.Errorf("%s: no %s in the cache", n.Hostname, payload.PythonAsset(n.Python))
					}
				}
				for _, ref := range n.Images.Pull {
					p, ok := c.Path(payload.ImageArchiveName(ref))
					if !ok {
						t.Errorf("%s: no %s in the cache", n.Hostname, payload.ImageArchiveName(ref))
						continue
					}
					tag, _ := name.NewTag(ref)
					img, err := tarball.ImageFromPath(p, &tag)
					if err != nil {
						t.Fatal(err)
					}
					gd, _ := img.Digest()
					wd, _ := w.images[ref].Digest()
					if gd != wd {
						t.Errorf("%s: %s has %s, the registry %s", n.Hostname, ref, gd, wd)
					}
					refs, err := payload.ImageRefs(p)
					if err != nil || !slices.Contains(refs, ref) {
						t.Errorf("%s: the tarball is tagged %v (%v)", ref, refs, err)
					}
				}
			}
			items, err := payload.ForNodes(nodes, payload.Sources{Cache: c, Lock: lock})
			if err != nil {
				t.Fatalf("payload.ForNodes: %v", err)
			}
			var carried, expect []string
			for _, it := range items {
				carried = append(carried, it.Name)
			}
			for _, n := range want[ex] {
				if n != cloudImage {
					expect = append(expect, n)
				}
			}
			sort.Strings(carried)
			if !slices.Equal(carried, expect) {
				t.Errorf("payload carries\n%v\nwant\n%v", carried, expect)
			}

			// Warm: no artifact is downloaded again, and the lock is the same.
			gets := func() int {
				n := w.f.Gets(w.pyPath) + w.f.Gets("/cloud/focal/current/"+cloudImage)
				for _, d := range slices.Concat(dockerDebs, nvidiaDebs) {
					n += w.f.Gets("/docker/linux/ubuntu/pool/stable/"+d.file()) +
						w.f.Gets("/nvidia/libnvidia-container/stable/deb/amd64/"+d.file())
				}
				return n
			}
			before := gets()
			blobs, _ := w.reg.Counts()
			reqs2, err := ForSite(context.Background(), site, nil, o)
			if err != nil {
				t.Fatal(err)
			}
			arts2, err := Fetch(context.Background(), c, reqs2, w.o.Fetch)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(arts2, arts) {
				t.Errorf("warm fetch changed the lock:\n%v\n%v", arts2, arts)
			}
			if blobs2, _ := w.reg.Counts(); gets() != before || blobs2 != blobs {
				t.Errorf("warm fetch downloaded again: %d artifact GETs, %d blob GETs", gets()-before, blobs2-blobs)
			}

			// And from the lock alone, into a fresh cache: the same bytes.
			c2 := openCache(t)
			arts3, err := Fetch(context.Background(), c2, FromLock(lock), w.o.Fetch)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fetch.NewLock(arts3).Artifacts, lock.Artifacts) {
				t.Errorf("fetch from the lock:\n%v\nwant\n%v", arts3, lock.Artifacts)
			}
		})
	}
}

func TestForSiteSelectsNodesPinsAndManifest(t *testing.T) {
	w := newWorld(t)
	site := example(t, "cluster")
	var m1 []*spec.Node
	for i := range site.Nodes {
		if site.Nodes[i].Hostname == "bai-m1" {
			m1 = append(m1, &site.Nodes[i])
		}
	}
	o := w.o
	o.CloudImage = false
	inst, err := fetch.ParseManifest([]byte("docker-buildx-plugin\t0.10.0\nbase-files\t11\nsnap:lxd\t1\n"))
	if err != nil {
		t.Fatal(err)
	}
	o.Installed = inst
	var warns []string
	o.Warn = func(m string) { warns = append(warns, m) }
	reqs, err := ForSite(context.Background(), site, m1, o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reqs {
		got = append(got, r.Artifact.Name)
		if !slices.Equal(r.Nodes, []string{"bai-m1"}) {
			t.Errorf("%s: nodes %v", r.Artifact.Name, r.Nodes)
		}
		if r.Artifact.Kind == KindDeb && r.Field != "docker" {
			t.Errorf("%s: field %q", r.Artifact.Name, r.Field)
		}
	}
	want := []string{w.pyAsset}
	for _, n := range newestDocker {
		if !strings.HasPrefix(n, "docker-buildx-plugin") { // in the image manifest
			want = append(want, n)
		}
	}
	if sort.Strings(got); !slices.Equal(got, sorted(want)) {
		t.Errorf("manager's requests\n%v\nwant\n%v", got, sorted(want))
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "iptables") || !strings.Contains(warns[0], "bai-m1: docker") {
		t.Errorf("warnings %q", warns)
	}

	// Version pins, and nodes sharing requests.
	site = parseSite(t, `version: 1
name: pins
target: ubuntu-20.04
docker:
  version: "5:24.0.7-1~ubuntu.20.04~focal"
  compose: false
gpu:
  enabled: true
  toolkit_version: 1.14.3-1
python:
  sha256: "`+strings.Repeat("ab", 32)+`"
images:
  pull: []
nodes:
  - {hostname: n1, role: agent}
  - {hostname: n2, role: agent}
`)
	reqs, err = ForSite(context.Background(), site, nil, Options{Fetch: w.o.Fetch, Keys: w.o.Keys})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range reqs {
		got = append(got, r.Artifact.Name)
		if !slices.Equal(r.Nodes, []string{"n1", "n2"}) {
			t.Errorf("%s: nodes %v", r.Artifact.Name, r.Nodes)
		}
		if r.Artifact.Kind == KindPython && r.Artifact.SHA256 != strings.Repeat("ab", 32) {
			t.Errorf("python.sha256 not honoured: %+v", r.Artifact)
		}
	}
	want = sorted([]string{w.pyAsset, "containerd.io_1.7.25-1_amd64.deb", "docker-buildx-plugin_0.23.0-1~ubuntu.20.04~focal_amd64.deb",
		"docker-ce-cli_24.0.7-1~ubuntu.20.04~focal_amd64.deb", "docker-ce_24.0.7-1~ubuntu.20.04~focal_amd64.deb",
		"libnvidia-container-tools_1.14.3-1_amd64.deb", "libnvidia-container1_1.14.3-1_amd64.deb",
		"nvidia-container-toolkit-base_1.14.3-1_amd64.deb", "nvidia-container-toolkit_1.14.3-1_amd64.deb"})
	if sort.Strings(got); !slices.Equal(got, want) {
		t.Errorf("pinned requests\n%v\nwant\n%v", got, want)
	}
	// The python pin is checked when the file comes in.
	_, err = Fetch(context.Background(), openCache(t), reqs, w.o.Fetch)
	if err == nil || !strings.Contains(err.Error(), "n1, n2: python: "+w.pyAsset) || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("bad python pin: %v", err)
	}
}

func TestForSiteErrorsNameNodeAndField(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		what string
		site string
		o    func(*Options)
		want []string
	}{
		{"docker.version not in the repository", "docker: {version: 5:1.0-1}\n", nil,
			[]string{"bai-x: docker.version: apt: no docker-ce version 5:1.0-1"}},
		{"no such python release", "python: {release: \"20991231\"}\n", nil,
			[]string{"bai-x: python: ", "/python/20991231/SHA256SUMS", "404"}},
		{"python asset not in SHA256SUMS", "python: {version: 3.12.99}\n", nil,
			[]string{"bai-x: python: ", "SHA256SUMS does not list cpython-3.12.99+"}},
		{"apt repository signed by another key", "", func(o *Options) {
			o.Keys = map[string]openpgp.EntityList{KeyDocker: {testsrv.Key(t, "stranger")}, KeyCloudImage: o.Keys[KeyCloudImage]}
		}, []string{"bai-x: docker: ", "InRelease: bad signature"}},
		{"cloud image sums signed by another key", "", func(o *Options) {
			o.Keys = map[string]openpgp.EntityList{KeyDocker: o.Keys[KeyDocker], KeyCloudImage: {testsrv.Key(t, "stranger")}}
		}, []string{"bai-x: target (--cloud-image): ", "SHA256SUMS: bad signature"}},
		{"unreachable mirror", "", func(o *Options) {
			m := map[string]string{}
			for k, v := range o.Fetch.Mirrors {
				m[k] = v
			}
			m["https://download.docker.com"] = "http://127.0.0.1:1/docker"
			o.Fetch.Mirrors = m
		}, []string{"bai-x: docker: deb https://download.docker.com/linux/ubuntu focal stable: "}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			site := parseSite(t, "version: 1\nname: e\ntarget: ubuntu-20.04\nimages: {pull: []}\n"+tc.site+"nodes:\n  - {hostname: bai-x, role: all-in-one}\n")
			o := w.o
			if tc.o != nil {
				tc.o(&o)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := ForSite(ctx, site, nil, o)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestFetchImagesWithSiteCredentials(t *testing.T) {
	w := newWorld(t)
	reg := testsrv.NewRegistry(t, "bai", "t0p-secret")
	want := reg.Push(t, "private/app:1", 2)
	ref := reg.Host() + "/private/app:1"
	mk := func(token string) *spec.Site {
		return parseSite(t, fmt.Sprintf(`version: 1
name: creds
target: ubuntu-20.04
docker: {enabled: true}
python: {enabled: false}
images:
  pull: [%q]
  registries:
    - {registry: %q, username: bai, token: %q}
nodes:
  - {hostname: bai-x, role: manager}
`, ref, reg.Host(), token))
	}
	o := w.o
	o.CloudImage = false
	c := openCache(t)

	reqs, err := ForSite(context.Background(), mk("wrong"), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(context.Background(), c, reqs, o.Fetch)
	if err == nil || !strings.Contains(err.Error(), "bai-x: images.pull[0]: image "+ref) || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("wrong token: %v", err)
	}
	if _, ok := c.Lookup(payload.ImageArchiveName(ref)); ok {
		t.Error("a refused image is in the cache")
	}

	reqs, err = ForSite(context.Background(), mk("t0p-secret"), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	arts, err := Fetch(context.Background(), c, reqs, o.Fetch)
	if err != nil {
		t.Fatal(err)
	}
	var img fetch.Artifact
	for _, a := range arts {
		if a.Kind == KindImage {
			img = a
		}
	}
	wd, _ := want.Digest()
	if img.Name != payload.ImageArchiveName(ref) || img.Version != wd.String() {
		t.Errorf("image artifact %+v, want digest %s", img, wd)
	}
	p, _ := c.Path(img.Name)
	if fi, err := os.Stat(p); err != nil || fi.Size() != img.Size {
		t.Errorf("cached tarball: %v", err)
	}
}
