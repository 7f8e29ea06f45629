package bake

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
)

// TestBakeClones boots two copies of the sealed image in parallel, each
// with the thin seed of its own node, and checks that each is a new
// machine and passes the verifier.
func TestBakeClones(t *testing.T) {
	needBake(t)
	rep := baked.res.Manifest.Seal
	type clone struct {
		name  string
		facts map[string]string
		rep   *verify.Report
	}
	clones := []*clone{{name: "bai-vm"}, {name: "bai-vm2"}}
	var wg sync.WaitGroup
	for _, c := range clones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.facts, c.rep = bootClone(t, c.name)
		}()
	}
	wg.Wait()
	for _, c := range clones {
		if c.facts == nil || c.rep == nil {
			return
		}
	}
	a, b := clones[0].facts, clones[1].facts
	for _, c := range clones {
		f := c.facts
		t.Logf("%s: %v", c.name, f)
		if len(f["machine-id"]) != 32 || f["machine-id"] == rep.BakeMachineID {
			t.Errorf("%s: machine-id %q (bake's %q)", c.name, f["machine-id"], rep.BakeMachineID)
		}
		if f["instance"] != f["want-instance"] || f["instance"] == "bainode-bake" || f["boot-finished"] != "yes" {
			t.Errorf("%s: cloud-init instance %q, boot-finished %q: not a new instance", c.name, f["instance"], f["boot-finished"])
		}
		if f["hostkey"] == "" || strings.Contains(strings.Join(rep.BakeHostKeys, " "), f["hostkey"]) {
			t.Errorf("%s: ssh host key %q is missing or the bake's (%q)", c.name, f["hostkey"], rep.BakeHostKeys)
		}
		// The image part of the plan is in the image.
		if !strings.HasPrefix(f["user"], "bai:x:1100:1100:") || f["somaxconn"] != "4096" {
			t.Errorf("%s: user %q, somaxconn %q: the image lacks the plan's image part", c.name, f["user"], f["somaxconn"])
		}
		if f["leftover"] != "" {
			t.Errorf("%s: the bake's password hash is in %s", c.name, f["leftover"])
		}
		// The node phase ran and the verifier, carried by the image, passes
		// the node against the guide: hosts block, /vfroot, user, limits, sysctl.
		var ids []string
		for _, ch := range c.rep.Checks {
			ids = append(ids, ch.ID)
			if ch.Status == verify.StatusFail {
				t.Errorf("%s: %s failed: expected %q, got %q (%s)", c.name, ch.ID, ch.Expected, ch.Actual, ch.Detail)
			}
		}
		if c.rep.Host != c.name || c.rep.Summary.Pass < 10 {
			t.Errorf("%s: report of host %q with %d passed checks: %v", c.name, c.rep.Host, c.rep.Summary.Pass, ids)
		}
	}
	// An offline guest's network attempts are caught, named, and only the
	// second clone's: the first one and the bake itself tried nothing.
	if a["net"] != "" {
		t.Errorf("bai-vm tried the network: %s", a["net"])
	}
	if b["net-tried"] != "yes" || !strings.Contains(b["net"], "DNS query for "+netProbeName) || !strings.Contains(b["net"], "TCP "+netProbeAddr) {
		t.Errorf("bai-vm2's network attempts were not caught: %q", b["net"])
	}
	if a["firmware"] != "bios" || b["firmware"] != "uefi" {
		t.Errorf("firmwares: bai-vm %q (want bios), bai-vm2 %q (want uefi)", a["firmware"], b["firmware"])
	}
	if a["machine-id"] == b["machine-id"] {
		t.Errorf("both clones have machine-id %s", a["machine-id"])
	}
	if a["hostkey"] == b["hostkey"] {
		t.Errorf("both clones have ssh host key %s", a["hostkey"])
	}
}

// cloneProbe prints what the clone test compares on the console. It runs
// as a unit after cloud-final, so cloud-init has written boot-finished. The
// password hash is searched for in two halves: the clone's own seed (kept
// by cloud-init) must not hold it whole.
const cloneProbe = `#!/bin/sh
h1='%s'
h2='%s'
{
echo BAKETEST-BEGIN
echo "machine-id=$(cat /etc/machine-id)"
echo "instance=$(cat /var/lib/cloud/data/instance-id)"
echo "boot-finished=$(test -f /var/lib/cloud/instance/boot-finished && echo yes)"
echo "hostkey=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)"
echo "user=$(getent passwd bai)"
echo "somaxconn=$(sysctl -n net.core.somaxconn)"
echo "firmware=$(test -d /sys/firmware/efi && echo uefi || echo bios)"
echo "leftover=$(grep -rlsF -e "$h1$h2" /etc /var /root /home /tmp /usr/local /run 2>/dev/null | grep -v '^/etc/shadow-\?$' | tr '\n' ' ')"
%s
echo BAKETEST-END
} >/dev/ttyS0 2>&1
`

// What the second clone tries: a name and an address (TEST-NET-1) that
// nothing answers for.
const (
	netProbeName = "bainode-net-probe.example"
	netProbeAddr = "192.0.2.7:8080"
)

// netTry gives the first NIC an address in QEMU's user network, then sends
// a DNS query to its resolver and a TCP SYN, as a guest reaching out would.
const netTry = `if=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
ip link set "$if" up; ip addr add 10.0.2.15/24 dev "$if"; ip route add default via 10.0.2.2
timeout 10 python3 - %s %s %s <<'PY'
import socket, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
q += b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[3].split(".")) + b"\x00\x00\x01\x00\x01"
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(q, ("10.0.2.3", 53))
c = socket.socket()
c.settimeout(4)
try:
    c.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    pass
PY
echo net-tried=yes`

const probeUnit = `[Unit]
After=cloud-final.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/bake-probe
`

// bootClone boots the baked image with the thin node seed that
// `bainode seed --image-manifest` writes for a node of vm-test named name,
// plus the probe, and returns the probe's facts and the verifier's report.
func bootClone(t *testing.T, name string) (map[string]string, *verify.Report) {
	dir := t.TempDir()
	site, n := bakedSite(t)
	n.Hostname = name
	full := renderSeed(t, site, n)
	if err := CheckPlan(baked.res.Manifest, full); err != nil {
		t.Error(err)
		return nil, nil
	}
	files, err := NodeSeed(full)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	half := len(testHash) / 2
	// The second clone tries the network, as a bake must not: the host
	// sees it in the NIC's dump (the check an offline bake fails on).
	try := ""
	if name == "bai-vm2" {
		// Its own address first: the thin seed's network-config need not
		// match this NIC's name.
		host, port, _ := strings.Cut(netProbeAddr, ":")
		try = fmt.Sprintf(netTry, host, port, netProbeName)
	}
	probe := fmt.Sprintf(cloneProbe, testHash[:half], testHash[half:], try)
	ud := strings.Replace(string(files.UserData), "\nwrite_files:\n", fmt.Sprintf(`
write_files:
  - path: /usr/local/sbin/bake-probe
    permissions: "0755"
    content: |
%s
  - path: /etc/systemd/system/bake-probe.service
    content: |
%s
`, indent(probe, 6), indent(probeUnit, 6)), 1)
	ud = strings.Replace(ud, "\nruncmd:\n", "\nruncmd:\n  - [systemctl, start, --no-block, bake-probe.service]\n", 1)
	if !strings.Contains(ud, "bake-probe.service]") || !strings.Contains(ud, "path: /usr/local/sbin/bake-probe") {
		t.Errorf("could not add the probe to the thin seed:\n%s", files.UserData)
		return nil, nil
	}
	files.UserData = []byte(ud)
	instance := strings.Trim(strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(files.MetaData), "\n", 2)[0], "instance-id:")), `"`) // meta-data quotes it
	iso := filepath.Join(dir, "seed.iso")
	if err := seed.WriteISO(iso, files.FS()); err != nil {
		t.Error(err)
		return nil, nil
	}
	cfg := vm.Config{
		Disk: baked.output, DiskFormat: vm.FormatQCOW2,
		Drives: []vm.Drive{{Path: iso, Format: vm.FormatRaw, Media: vm.MediaCDROM}},
		Accel:  baked.accel, MemoryMiB: 1024, CPUs: 1,
		SerialLog: filepath.Join(dir, "serial.log"), NetDump: filepath.Join(dir, "net.pcap"),
	}
	if !baked.img.Bootloader {
		cfg.Kernel, cfg.Initrd, cfg.Append = baked.img.Kernel, baked.img.Initrd, baked.img.Append
	}
	// The second clone boots through OVMF: a baked image boots under
	// both firmwares (the base carries an ESP beside extlinux).
	if name == "bai-vm2" {
		cfg.Firmware = vm.UEFI
		if !baked.img.Bootloader {
			cfg.Kernel, cfg.Initrd, cfg.Append = "", "", ""
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), baked.accel.Timeout(12*time.Minute))
	defer cancel()
	start := time.Now()
	m, err := vm.Start(ctx, cfg)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	defer m.Stop()
	for _, marker := range []string{"BAKETEST-END", verify.EndMarker} {
		if err := m.WaitFor(ctx, marker); err != nil {
			t.Errorf("%s: %v\n%s", name, err, consoleTail(m.Output(), 60))
			return nil, nil
		}
	}
	t.Logf("%s: facts after %s", name, time.Since(start).Round(time.Second))
	out := m.Output()
	facts := map[string]string{}
	re := regexp.MustCompile(`(?m)^(machine-id|instance|hostkey|user|somaxconn|leftover|boot-finished|net-tried|firmware)=(.*?)\r?$`)
	for _, mm := range re.FindAllStringSubmatch(out, -1) {
		facts[mm[1]] = strings.TrimSpace(mm[2])
	}
	facts["want-instance"] = instance
	m.Stop()
	tries, err := netAttempts(cfg.NetDump)
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	if len(tries) > 0 {
		facts["net"] = (&NetworkError{Attempts: tries}).Error()
	}
	rep, err := verify.Extract([]byte(out))
	if err != nil {
		t.Errorf("%s: verifier report: %v", name, err)
		return facts, nil
	}
	return facts, &rep
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
}
