package plan_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
)

// One owner: spec.Targets is the list of targets, and targets.yaml
// describes exactly those.
func TestTargetsAgreeWithSpec(t *testing.T) {
	ts, err := plan.Targets()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range ts {
		names = append(names, name)
	}
	slices.Sort(names)
	want := slices.Clone(spec.Targets)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("templates/targets.yaml describes %v; spec.Targets lists %v", names, want)
	}
	for name, tg := range ts {
		if tg.Name != name || tg.Family == "" || tg.Codename == "" || tg.DockerPath == "" || len(tg.NFS) == 0 {
			t.Errorf("%s: incomplete: %+v", name, tg)
		}
	}
}

func TestLoadTargetsStrict(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"x:\n  cloud_init: [\"22.1\"]\n  codenam: y\n", "field codenam not found"},
		{"x:\n  family: ubuntu\n", "x: cloud_init"},
		{"x: [1]\n", "targets.yaml"},
	} {
		_, err := plan.LoadTargets(fstest.MapFS{"targets.yaml": {Data: []byte(tc.src)}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error with %q", tc.src, err, tc.want)
		}
	}
}

func TestUserInBootcmd(t *testing.T) {
	ts, _ := plan.Targets()
	for name, tg := range ts {
		// Only 20.04 ships a cloud-init older than 22.1.
		if got, want := tg.UserInBootcmd(), name == "ubuntu-20.04"; got != want {
			t.Errorf("%s (cloud-init %v): UserInBootcmd %v, want %v", name, tg.CloudInit, got, want)
		}
	}
	if (plan.Target{CloudInit: []string{"22.10"}}).UserInBootcmd() {
		t.Error("22.10 compared below 22.1")
	}
	if !(plan.Target{CloudInit: []string{"21.4-0ubuntu1"}}).UserInBootcmd() {
		t.Error("21.4 not below 22.1")
	}
}

func TestFill(t *testing.T) {
	got := plan.Fill([]string{"nvidia-headless-{branch}-server", "cuda-cudart-{cuda}", "plain"}, "535", "12-2")
	want := []string{"nvidia-headless-535-server", "cuda-cudart-12-2", "plain"}
	if !slices.Equal(got, want) {
		t.Errorf("Fill: %v, want %v", got, want)
	}
}

func names(p *plan.Plan, where plan.Where) []string {
	var out []string
	for _, s := range p.Steps {
		if s.Where == where {
			out = append(out, s.Name)
		}
	}
	return out
}

// The image/node split, on every target and for every role: image steps
// are the machine's software, node steps what is particular to one host,
// and all image steps come first.
func TestSplit(t *testing.T) {
	src := []byte(`version: 1
gpu: {enabled: true, driver: "535", cuda: "12-2"}
storage: {nfs: [{name: d1, server: 10.0.0.5, export: /x}]}
hosts: {entries: [{ip: 10.0.0.1, names: [m1]}]}
nodes:
  - {hostname: m, role: manager, gpu: {enabled: false}}
  - {hostname: a, role: agent}
  - {hostname: s, role: storage, docker: {enabled: false}, gpu: {enabled: false}, python: {enabled: false}, images: {pull: []}}
  - {hostname: o, role: all-in-one}
`)
	for _, target := range spec.Targets {
		s := site(t, "split.yaml", src, target)
		for _, p := range plans(t, s) {
			seenNode := false
			for _, st := range p.Steps {
				if st.Where == plan.Node {
					seenNode = true
				} else if seenNode {
					t.Errorf("%s %s: image step %s after a node step", target, p.Node, st.Name)
				}
			}
			img, node := names(p, plan.Image), names(p, plan.Node)
			wantImg := map[string][]string{
				"m": {"user", "limits", "sysctl", "docker", "python"}, // the manager role pulls no images
				"a": {"user", "limits", "sysctl", "docker", "gpu-driver", "gpu-toolkit", "python", "images"},
				"s": {"user", "limits", "sysctl"},
				"o": {"user", "limits", "sysctl", "docker", "gpu-driver", "gpu-toolkit", "python", "images"},
			}[p.Node]
			if !slices.Equal(img, wantImg) {
				t.Errorf("%s %s (%s): image steps %v, want %v", target, p.Node, p.Role, img, wantImg)
			}
			if want := []string{"hostname", "network", "hosts", "storage", "verify"}; !slices.Equal(node, want) {
				t.Errorf("%s %s: node steps %v, want %v", target, p.Node, node, want)
			}
			if p.Target.Name != target || p.Role == "" {
				t.Errorf("%s %s: target %q role %q", target, p.Node, p.Target.Name, p.Role)
			}
		}
	}
}

func TestRules(t *testing.T) {
	s := site(t, "rules.yaml", []byte(`version: 1
artifacts: payload
docker: {version: "5:27.3.1-1~ubuntu.22.04~jammy", compose: false, repository: "https://mirror.example/docker/"}
gpu: {enabled: true, driver: "550", cuda: "12-4", toolkit_version: "1.17.3-1"}
python: {sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
images: {pull: ["busybox", "cr.example/x/y:1"]}
storage: {nfs: [{name: d1, server: 10.0.0.5, export: /x}]}
nodes: [{hostname: n}]
`), "ubuntu-22.04")
	p, err := plan.For(&s.Nodes[0], plan.Options{Arch: "arm64", CloudImage: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Arch != "arm64" || p.Artifacts != spec.ArtifactsPayload {
		t.Errorf("arch %q artifacts %q", p.Arch, p.Artifacts)
	}

	d := p.Step("docker")
	if d == nil || len(d.Repos) != 1 {
		t.Fatalf("docker step: %+v", d)
	}
	r := d.Repos[0]
	if r.URI != "https://mirror.example/docker/ubuntu" || r.Suite != "jammy" || r.String() != "https://mirror.example/docker/ubuntu jammy stable" {
		t.Errorf("docker repo: %+v", r)
	}
	var reqs []string
	for _, pk := range r.Packages {
		reqs = append(reqs, pk.Request())
		if pk.Version != "" && pk.PinField != "docker.version" {
			t.Errorf("%s pinned by %q", pk.Name, pk.PinField)
		}
	}
	wantDocker := []string{"containerd.io", "docker-buildx-plugin", "docker-ce=5:27.3.1-1~ubuntu.22.04~jammy", "docker-ce-cli=5:27.3.1-1~ubuntu.22.04~jammy"}
	if !slices.Equal(reqs, wantDocker) {
		t.Errorf("docker packages (compose off, pinned): %v, want %v", reqs, wantDocker)
	}

	g := p.Step("gpu-driver")
	if g == nil || !slices.Equal(g.Packages, []string{"nvidia-headless-no-dkms-550-server", "nvidia-utils-550-server", "cuda-cudart-12-4"}) {
		t.Errorf("gpu-driver: %+v", g)
	}
	tk := p.Step("gpu-toolkit")
	if tk == nil || len(tk.Repos) != 1 || len(tk.Repos[0].Packages) != 4 || tk.Repos[0].URI != plan.NVIDIAToolkitRepo+"/arm64" {
		t.Fatalf("gpu-toolkit with a pin: %+v", tk)
	}
	for _, pk := range tk.Repos[0].Packages {
		if pk.Version != "1.17.3-1" || pk.PinField != "gpu.toolkit_version" {
			t.Errorf("toolkit package %+v not pinned by gpu.toolkit_version", pk)
		}
	}

	base := p.Step("base")
	if base == nil || len(base.Files) != 1 || base.Files[0].URL() != plan.UbuntuCloudImages+"/jammy/current/jammy-server-cloudimg-arm64.img" {
		t.Errorf("base with --cloud-image: %+v", base)
	}
	py := p.Step("python")
	if py == nil || len(py.Files) != 1 || py.Files[0].SHA256 != s.Nodes[0].Python.SHA256 || py.Files[0].Name != plan.PythonAsset(s.Nodes[0].Python) {
		t.Errorf("python: %+v", py)
	}
	im := p.Images()
	if len(im) != 2 || im[1].Field != "images.pull[1]" || im[1].Platform != "linux/arm64" {
		t.Errorf("images: %+v", im)
	}
	if st := p.Step("storage"); st == nil || !slices.Equal(st.Packages, []string{"nfs-common"}) {
		t.Errorf("storage: %+v", st)
	}

	// Payload paths: python and images by name, .debs in apt/, and the
	// cloud image (what the node boots) not carried.
	got := map[string]string{}
	for _, src := range p.Sources {
		got[src.Kind+" "+src.Name] = src.Payload
	}
	want := map[string]string{
		"cloud-image jammy-server-cloudimg-arm64.img":   "",
		"python " + plan.PythonAsset(s.Nodes[0].Python): "python/" + plan.PythonAsset(s.Nodes[0].Python),
		"image busybox":          "images/",
		"image cr.example/x/y:1": "images/",
		"deb https://mirror.example/docker/ubuntu jammy stable": "apt/",
		"deb " + plan.NVIDIAToolkitRepo + "/arm64 /":            "apt/",
		"deb ubuntu-22.04 archive":                              "apt/",
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("source %s: payload %q (present %v), want %q", k, g, ok, v)
		}
	}

	// Debian has no cloud image bainode fetches; the base step goes.
	s.Nodes[0].Target = "debian-12"
	if p, _ := plan.For(&s.Nodes[0], plan.Options{CloudImage: true}); p.Step("base") != nil {
		t.Error("debian-12: a base step with a cloud image")
	}
	// Compose on adds the plugin; no pin, no version.
	s.Nodes[0].Docker.Compose, s.Nodes[0].Docker.Version = true, ""
	p, _ = plan.For(&s.Nodes[0], plan.Options{})
	if pk := p.Step("docker").Repos[0].Packages; len(pk) != 5 || pk[4].Name != "docker-compose-plugin" || pk[2].Request() != "docker-ce" {
		t.Errorf("compose on, unpinned: %+v", pk)
	}
}

func TestUnknownTarget(t *testing.T) {
	n := &spec.Node{Hostname: "x", Target: "plan9"}
	_, err := plan.For(n, plan.Options{})
	var te *plan.TargetError
	if !errors.As(err, &te) || te.Node != "x" || !strings.Contains(err.Error(), `"plan9"`) {
		t.Errorf("got %v, want a TargetError naming x and plan9", err)
	}
}

func TestPackageNames(t *testing.T) {
	got := plan.PackageNames()
	for _, want := range []string{"docker-ce", "containerd.io", "nvidia-container-toolkit", "docker.io", "nvidia-headless-no-dkms-", "linux-modules-nvidia-", "nfs-common", "cuda-cudart-"} {
		if !slices.Contains(got, want) {
			t.Errorf("PackageNames lacks %q", want)
		}
	}
}

func TestImageKey(t *testing.T) {
	for _, c := range [][2]string{
		{"busybox", "busybox:latest"},
		{"docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox:1.36", "busybox:1.36"},
		{"localhost:5000/x", "localhost:5000/x:latest"},
		{"cr.backend.ai/stable/python:3.9", "cr.backend.ai/stable/python:3.9"},
		{"docker.io/x/y@sha256:ab", "x/y@sha256:ab"},
	} {
		if got := plan.ImageKey(c[0]); got != c[1] {
			t.Errorf("ImageKey(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}
