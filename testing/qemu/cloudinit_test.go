package qemu

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/vm"
)

// smokeUserData runs its checks from a transient systemd unit, outside
// cloud-final: `cloud-init status --wait` inside runcmd would wait for
// itself. The unit reports on the serial port and powers the guest off.
// Marker lines are assembled at run time so they never match the seed text.
const smokeUserData = `#cloud-config
write_files:
  - path: /usr/local/sbin/bainode-smoke
    permissions: "0755"
    content: |
      #!/bin/sh
      tag=bainode-smoke
      status=$(cloud-init status --wait --long 2>&1)
      {
        printf '%s\n' "$status" | sed "s/^/$tag: /"
        echo "$tag: errors=$(python3 -c 'import json; print(len(json.load(open("/run/cloud-init/result.json"))["v1"]["errors"]))')"
        echo "$tag: hostname=$(hostname)"
        echo "$tag: ipv4=$(ip -4 -o addr show scope global | awk '{print $4}' | head -n1)"
        echo "$tag: end"
      } >/dev/ttyS0 2>&1
      systemctl poweroff
runcmd:
  - [systemd-run, --no-block, --unit=bainode-smoke, /usr/local/sbin/bainode-smoke]
final_message: "bainode final_message after $UPTIME seconds"
`

const smokeMetaData = "instance-id: bainode-smoke-1\nlocal-hostname: bainode-smoke-vm\n"

// TestCloudInitNoCloud boots the base with a NoCloud seed ISO written by
// seed.WriteISO and checks that cloud-init finished cleanly: status done, no
// errors, the seed's hostname, and DHCP on the user-mode NIC.
func TestCloudInitNoCloud(t *testing.T) {
	img := Need(t)
	accel, err := Accel(t.Context(), img)
	if err != nil {
		t.Fatalf("accel: %v", err)
	}
	t.Logf("base %s (kernel %s, boot loader %v), accel %s", img.Dir, img.KernelVersion, img.Bootloader, accel)

	iso := filepath.Join(t.TempDir(), "seed.iso")
	err = seed.WriteISO(iso, fstest.MapFS{
		"user-data": {Data: []byte(smokeUserData)},
		"meta-data": {Data: []byte(smokeMetaData)},
	})
	if err != nil {
		t.Fatalf("seed.WriteISO: %v", err)
	}

	start := time.Now()
	m := Boot(t, vm.Config{
		Drives:    []vm.Drive{{Path: iso, Format: vm.FormatRaw, Media: vm.MediaCDROM}},
		Accel:     accel,
		MemoryMiB: 1024,
		CPUs:      2,
	})
	ctx, cancel := context.WithTimeout(t.Context(), accel.Timeout(90*time.Second))
	defer cancel()

	if err := m.WaitFor(ctx, "bainode final_message after"); err != nil {
		t.Fatalf("cloud-init final stage: %v", err)
	}
	t.Logf("cloud-init final_message %s after start", time.Since(start).Round(time.Second))
	if err := m.WaitFor(ctx, "bainode-smoke: end"); err != nil {
		t.Fatalf("smoke report: %v", err)
	}
	t.Logf("cloud-init done (status --wait returned) %s after start", time.Since(start).Round(time.Second))

	report := map[string]string{}
	for _, line := range strings.Split(m.Output(), "\n") {
		_, rest, ok := strings.Cut(strings.TrimRight(line, "\r"), "bainode-smoke: ")
		if !ok {
			continue
		}
		switch k, v, _ := strings.Cut(rest, "="); {
		case strings.HasPrefix(rest, "status: "):
			report["status"] = strings.TrimPrefix(rest, "status: ")
		case strings.HasPrefix(rest, "DataSource"):
			report["datasource"], _, _ = strings.Cut(rest, "]") // drop [dsmode=...]
		case v != "":
			report[k] = v
		}
	}
	for key, want := range map[string]string{
		"status":     "done",
		"errors":     "0",
		"datasource": "DataSourceNoCloud [seed=/dev/sr0", // our ISO, nothing else
		"hostname":   "bainode-smoke-vm",
		"ipv4":       "10.0.2.15/24", // DHCP on the user-mode NIC
	} {
		if got := report[key]; got != want {
			t.Errorf("guest %s: got %q, want %q", key, got, want)
		}
	}

	if err := m.Wait(ctx); err != nil {
		t.Errorf("power-off: %v", err)
	}
	t.Logf("powered off %s after start", time.Since(start).Round(time.Second))
}
