package gpustub

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/overlays"
	"github.com/lablup/bainode/testing/qemu"
)

// casesScript runs bainode-provision's gpu step (from the payload, as an
// air-gapped node does) once per stand-in driver, reports each outcome on
// the serial console, and leaves the last case's reboot to happen.
const casesScript = `#!/bin/bash
set -u
con() { echo "GPU""TEST $*" >/dev/ttyS0; }
prov() {
	BAINODE_ENV=/etc/bainode/case-$1.env BAINODE_STEPS=gpu /usr/local/sbin/bainode-provision >"/root/$1.log" 2>&1
	local rc=$?
	sed "s/^/GPULOG $1: /" "/root/$1.log" >/dev/ttyS0
	con "case=$1 rc=$rc status=$(/usr/local/lib/bainode/bainode-gpu-gate status)"
	con "case=$1 modules=$(awk '{print $1}' /proc/modules | grep -E '^nvidia(_uvm)?$' | sort | tr '\n' ' ')"
	con "case=$1 holds=$(apt-mark showhold | tr '\n' ' ')"
	con "case=$1 recommended=$(dpkg -s bainode-stub-recommended >/dev/null 2>&1 && echo installed || echo absent)"
}
clean() {
	modprobe -r nvidia_uvm nvidia 2>/dev/null
	dpkg -P $(dpkg-query -W -f '${Package}\n' 'bainode-stub-*') >/dev/null 2>&1
	rm -f /var/lib/bainode/gpu-gate.*
}
prov match
clean
prov wrong
clean
systemctl enable gpu-test-done.service
prov newkernel
# No reboot arranged: end here rather than wait for the timeout.
/usr/local/lib/bainode/bainode-gpu-gate status | grep -q '^reboot ' || systemctl --no-block poweroff
`

// doneScript runs on the boot after the reboot, after the gate's unit.
const doneScript = `#!/bin/bash
u=bainode-gpu-gate.service
echo "GPU""TEST boot2 kernel=$(uname -r) status=$(/usr/local/lib/bainode/bainode-gpu-gate status) unit=$(systemctl is-enabled $u) result=$(systemctl show -p Result --value $u)" >/dev/ttyS0
systemctl --no-block poweroff
`

const doneUnit = `[Unit]
After=bainode-gpu-gate.service
[Service]
Type=oneshot
ExecStart=/root/gpu-test-done
[Install]
WantedBy=multi-user.target
`

// TestGateVM boots the Debian 12 test base with a payload disk of
// stand-in driver packages whose nvidia and nvidia-uvm modules were
// compiled here against the base's own kernel headers, and runs the real
// bainode-provision gpu step three times, each with the driver choice a
// provision.env gives (plan's layout: user space, precompiled module
// packages for {kernel}, DKMS fallback, kernel hold, no recommends):
//
//   - match: the precompiled package for the running kernel is in the
//     payload: chosen, installed without its recommends, kernels held
//     meanwhile, modules loaded into the running kernel, status loaded;
//   - wrong: no precompiled package, so the DKMS fallback, whose module is
//     stamped for another kernel: provisioning fails with the message;
//   - newkernel: the fallback pulls in a new "kernel" (a vmlinuz and a
//     modules tree for 6.1.0-99-bainode) with the module only for it: one
//     reboot is arranged and happens after cloud-init ends.
//
// The reboot comes back in the same kernel (the stand-in kernel is not
// bootable, and the base's boot loader names its kernel), so the gate's
// boot unit must fail with its message and disable itself: no second
// reboot. That a reboot into a kernel that has the module loads it and
// passes is shown by TestGateDecisions/new_kernel, not here.
func TestGateVM(t *testing.T) {
	t.Parallel()
	img := qemu.Need(t)
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	k := img.KernelVersion
	work := t.TempDir()

	// --- the stand-in packages.
	paths, err := BuildDebs(t.Context(), filepath.Join(work, "debs"), k)
	if err != nil {
		if os.Getenv("CI") != "true" && strings.Contains(err.Error(), ErrHost.Error()) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	var items []payload.Item
	for _, p := range paths {
		items = append(items, payload.Item{Kind: payload.KindDeb, Path: p})
	}
	payloadImg := filepath.Join(work, "payload.img")
	if err := payload.Build(t.Context(), payloadImg, nil, items, payload.Options{}); err != nil {
		t.Fatal(err)
	}

	// --- the seed: the real scripts and units, one provision.env per case.
	ts, err := plan.Targets()
	if err != nil {
		t.Fatal(err)
	}
	// Each case's provision.env is render's, for a debian-12 GPU agent on
	// a payload, with the driver choice overridden (a later line wins when
	// the script sources it): keys render adds later reach the test too.
	site, err := spec.Parse("gpu.yaml", []byte("version: 1\ntarget: debian-12\nartifacts: payload\n"+
		"gpu: {enabled: true, toolkit: false}\nnodes: [{hostname: bainode-gpu, role: agent}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, err := r.ProvisionEnv(site, &site.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	env := func(precompiled, dkms string) string {
		return string(base) + DriverChoice(precompiled, dkms, ts["debian-12"].KernelHold, plan.KernelWord)
	}
	kw := plan.KernelWord
	overlay := func(p string) string {
		b, err := fs.ReadFile(overlays.FS, p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	type wf struct {
		Path        string `yaml:"path"`
		Permissions string `yaml:"permissions"`
		Content     string `yaml:"content"`
	}
	ud := map[string]any{
		"write_files": []wf{
			{"/usr/local/sbin/bainode-provision", "0755", overlay("provision/bainode-provision")},
			{"/usr/local/lib/bainode/bainode-gpu-gate", "0755", overlay("provision/bainode-gpu-gate")},
			{"/etc/systemd/system/bainode-gpu-gate.service", "0644", overlay("systemd/bainode-gpu-gate.service")},
			{"/etc/systemd/system/bainode-gpu-reboot.service", "0644", overlay("systemd/bainode-gpu-reboot.service")},
			{"/etc/bainode/case-match.env", "0644", env(Precompiled(kw), "bainode-stub-absent")},
			{"/etc/bainode/case-wrong.env", "0644", env("bainode-stub-nomods-"+kw, Wrong+" "+Headers(kw))},
			{"/etc/bainode/case-newkernel.env", "0644", env("", NewKernel)},
			{"/root/gpu-cases", "0755", casesScript},
			{"/root/gpu-test-done", "0755", doneScript},
			{"/etc/systemd/system/gpu-test-done.service", "0644", doneUnit},
		},
		"runcmd": [][]string{{"/root/gpu-cases"}},
	}
	b, err := yaml.Marshal(ud)
	if err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(work, "seed.iso")
	if err := seed.WriteISO(iso, fstest.MapFS{
		"user-data": {Data: append([]byte("#cloud-config\n"), b...)},
		"meta-data": {Data: []byte("instance-id: bainode-gpu-gate-1\nlocal-hostname: bainode-gpu\n")},
	}); err != nil {
		t.Fatal(err)
	}

	// --- one guest, two boots: no network, the payload read-only.
	start := time.Now()
	m := qemu.Boot(t, vm.Config{
		Drives: []vm.Drive{
			{Path: iso, Format: vm.FormatRaw, Media: vm.MediaCDROM},
			{Path: payloadImg, Format: vm.FormatRaw, ReadOnly: true},
		},
		NoNetwork: true, Accel: accel, MemoryMiB: 1024, CPUs: 2,
	})
	ctx, cancel := context.WithTimeout(t.Context(), accel.Timeout(5*time.Minute))
	defer cancel()
	waitErr := m.Wait(ctx)
	con := strings.ReplaceAll(m.Output(), "\r", "")
	t.Logf("guest ran %s (%s)", time.Since(start).Round(time.Second), accel)
	t.Cleanup(func() {
		if t.Failed() {
			var keep []string
			for _, l := range strings.Split(con, "\n") {
				if strings.Contains(l, "GPU") || strings.Contains(l, "bainode") || strings.Contains(l, "Linux version") {
					keep = append(keep, l)
				}
			}
			t.Logf("console, GPU lines:\n%s", strings.Join(keep, "\n"))
		}
	})
	if waitErr != nil {
		t.Fatalf("guest did not power off: %v", waitErr)
	}

	for _, want := range []string{
		// match: precompiled for this kernel, loaded, no recommends, holds back.
		"GPULOG match: bainode-provision[gpu]: kernel module from: bainode-stub-modules-" + k + "\n",
		"GPULOG match: bainode-provision[gpu]: held while the driver goes in: linux-image-",
		"GPULOG match: bainode-gpu-gate: loaded nvidia and nvidia-uvm in kernel " + k + "\n",
		"GPUTEST case=match rc=0 status=loaded " + k + " nvidia nvidia-uvm\n",
		"GPUTEST case=match modules=nvidia nvidia_uvm \n",
		"GPUTEST case=match holds=\n",
		"GPUTEST case=match recommended=absent\n",
		"GPULOG match: Recommended packages:\n", // apt saw it, and left it out
		// wrong: the DKMS fallback, its module for another kernel.
		"GPULOG wrong: bainode-provision[gpu]: no precompiled module package bainode-stub-nomods-" + k + " for kernel " + k + "; using DKMS\n",
		"GPULOG wrong: bainode-provision[gpu]: kernel module from: bainode-stub-wrong bainode-stub-headers-" + k + "\n",
		"GPUTEST case=wrong rc=1 status=failed " + k + " the NVIDIA module does not match its kernel: kernel " + k + " has a nvidia module built for " + other,
		"GPUTEST case=wrong modules=\n",
		// newkernel: one reboot, then a clear failure and no loop.
		"GPULOG newkernel: bainode-gpu-gate: rebooting to load the NVIDIA driver: nvidia is built for kernel " + other + ", not for the running " + k + "\n",
		"GPUTEST case=newkernel rc=0 status=reboot " + k + " ",
		"GPUTEST boot2 kernel=" + k + " status=failed " + k + " kernel " + k + " still has no nvidia module after the reboot",
		"not rebooting again unit=disabled result=exit-code\n",
	} {
		if !strings.Contains(con, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if n := len(regexp.MustCompile(`Linux version \S+`).FindAllString(con, -1)); n != 2 {
		t.Errorf("the guest booted %d times, want 2 (one reboot)", n)
	}
	if strings.Contains(con, "GPULOG wrong: bainode-provision[gpu]: bainode-gpu-gate: loaded") {
		t.Error("the mismatched module was loaded")
	}
}
