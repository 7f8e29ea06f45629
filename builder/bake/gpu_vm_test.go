package bake

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/gpustub"
	"github.com/lablup/bainode/testing/qemu"
)

// TestBakeGPUWrongVermagic bakes a GPU agent offline whose payload's
// driver (a stand-in from testing/gpustub: the DKMS fallback, its nvidia
// module compiled against the base kernel's headers but stamped for
// another kernel) does not fit the image's kernel. The bake must fail
// with the gate's message, and leave no output, no work dir and no QEMU.
func TestBakeGPUWrongVermagic(t *testing.T) {
	t.Parallel()
	img := qemu.Need(t)
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	k := img.KernelVersion
	dir := t.TempDir()
	debs, err := gpustub.BuildDebs(t.Context(), filepath.Join(t.TempDir(), "debs"), k)
	if err != nil {
		if os.Getenv("CI") != "true" && strings.Contains(err.Error(), gpustub.ErrHost.Error()) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	var items []payload.Item
	for _, p := range debs {
		items = append(items, payload.Item{Kind: payload.KindDeb, Path: p})
	}
	payloadImg := filepath.Join(t.TempDir(), "payload.img")
	if err := payload.Build(t.Context(), payloadImg, nil, items, payload.Options{}); err != nil {
		t.Fatal(err)
	}

	// The site's GPU agent, its driver choice turned to the stand-ins: no
	// precompiled package for the kernel, so the DKMS fallback.
	site, n := parseSite(t, "gpu.yaml", "version: 1\ntarget: debian-12\nartifacts: payload\n"+
		"docker: {enabled: false, compose: false}\npython: {enabled: false}\nimages: {pull: []}\ngpu: {enabled: true, toolkit: false}\nnodes: [{hostname: bainode-gpu, role: agent}]\n")
	ts, err := plan.Targets()
	if err != nil {
		t.Fatal(err)
	}
	kw := plan.KernelWord
	choice := gpustub.DriverChoice("bainode-stub-nomods-"+kw, gpustub.Wrong+" "+gpustub.Headers(kw), ts["debian-12"].KernelHold, kw)
	files := appendEnv(t, renderSeed(t, site, n), choice)

	out := filepath.Join(dir, "gpu.qcow2")
	pw := &pidSeen{log: qemu.Log(t)}
	o := Options{
		Base: img.Disk, BaseFormat: vm.FormatQCOW2, Seed: files, Payload: payloadImg,
		Output: out, Accel: accel, Timeout: accel.Timeout(12 * time.Minute), MemoryMiB: 1024, CPUs: 1,
		Version: "test", Progress: pw,
	}
	if !img.Bootloader {
		o.Kernel, o.Initrd, o.Append = img.Kernel, img.Initrd, img.Append
	}
	_, err = Bake(t.Context(), o)
	want := "gpu: bainode-gpu-gate: ERROR: the NVIDIA module does not match its kernel: kernel " + k + " has a nvidia module built for " + gpustub.Other
	if err == nil || !strings.Contains(err.Error(), "the guest was not sealed") || !strings.Contains(err.Error(), want) {
		t.Fatalf("bake: %v\nwant an error with %q", err, want)
	}
	t.Logf("the bake failed as it should:\n%s", err)
	// The gate, and nothing else, failed it.
	if !strings.Contains(err.Error(), "bainode-provision[done]: FAILED steps: gpu\n") {
		t.Errorf("provisioning failed in more than the gpu step (or its log tail lacks the summary)")
	}
	if pw.pid == 0 {
		t.Error("no qemu pid seen")
	} else if err := syscall.Kill(pw.pid, 0); err == nil {
		t.Errorf("qemu %d still runs", pw.pid)
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		t.Errorf("left behind: %s", e.Name())
	}
}

// appendEnv adds lines to the seed's provision.env.
func appendEnv(t *testing.T, f render.Files, lines string) render.Files {
	t.Helper()
	doc, err := parseUserData(f.UserData)
	if err != nil {
		t.Fatal(err)
	}
	done := false
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "write_files" {
			continue
		}
		for _, it := range m.Content[i+1].Content {
			if fileItemPath(it) != provisionEnv {
				continue
			}
			for j := 0; j+1 < len(it.Content); j += 2 {
				if it.Content[j].Value == "content" {
					it.Content[j+1].Value += lines
					done = true
				}
			}
		}
	}
	if !done {
		t.Fatalf("no %s content in the user-data", provisionEnv)
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	f.UserData = append([]byte("#cloud-config\n"), b...)
	return f
}

// pidSeen notes QEMU's pid from the progress.
type pidSeen struct {
	log io.Writer
	pid int
}

func (p *pidSeen) Write(b []byte) (int, error) {
	if p.pid == 0 {
		if i := strings.Index(string(b), "qemu pid "); i >= 0 {
			var pid int
			if _, err := fmt.Sscan(string(b[i+len("qemu pid "):]), &pid); err == nil {
				p.pid = pid
			}
		}
	}
	return p.log.Write(b)
}
