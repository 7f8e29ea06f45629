package bake

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/qemu"
)

// BenchmarkBakeTools bakes the Debian 12 test base with vm-test's image
// part three ways (bainode bake, Packer's QEMU builder, virt-customize)
// and prints a markdown table: wall time with phases, output size, whether
// the output is sealed, and bainode's cache hit. `make bench` runs it once
// (scripts/bench.sh, bake_bench); it needs packer and libguestfs-tools.
func BenchmarkBakeTools(b *testing.B) {
	for _, tool := range []string{"packer", "virt-customize", "guestfish", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s not found (packages packer, libguestfs-tools, openssh-client)", tool)
		}
	}
	img := qemu.Need(b)
	accel, err := qemu.Accel(b.Context(), img)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	// A private copy of the base: a test run of another recipe may prune
	// the cached one while the tools still read it.
	base := filepath.Join(dir, "base.qcow2")
	run(b, "cp", "--sparse=always", img.Disk, base)
	img.Disk = base
	site, n := testSite(b, "4096")
	full := renderSeed(b, site, n)
	fmt.Printf("\n### bake: bainode vs Packer %s vs virt-customize (%s, %d CPUs, load %s at the start)\n\n", packerVersion(), accel, runtimeCPUs(), loadAvg())
	fmt.Println("| | wall | phases | output | sealed |")
	fmt.Println("|---|---:|---|---:|---|")
	var notes []string
	// Each row is printed once measured, so a later failure keeps it.
	for _, tool := range []func() benchRow{
		func() benchRow { return benchBainode(b, dir, img, accel, full, false) },
		func() benchRow { return benchBainode(b, dir, img, accel, full, true) },
		func() benchRow { return benchPacker(b, dir, img, accel, full) },
		func() benchRow { return benchVirtCustomize(b, dir, img, full) },
	} {
		r := tool()
		r.sealed = sealedState(b, r.output)
		var size int64
		if fi, err := os.Stat(r.output); err == nil {
			size = fi.Size()
		}
		fmt.Printf("| %s | %.1f s | %s | %.1f MB | %s |\n", r.name, r.wall.Seconds(), r.phases, float64(size)/1e6, r.sealed)
		if r.note != "" {
			notes = append(notes, "- "+r.name+": "+r.note)
		}
	}
	fmt.Printf("\n%s\n- load average at the end: %s\n", strings.Join(notes, "\n"), loadAvg())
}

type benchRow struct {
	name, phases, sealed, note string
	wall                       time.Duration
	output                     string
}

func benchBainode(b *testing.B, dir string, img qemu.Image, accel vm.Accel, full render.Files, compat bool) benchRow {
	name := "bainode bake (qcow2 zstd)"
	out := filepath.Join(dir, "bainode.qcow2")
	if compat {
		name, out = "bainode bake --compat (qcow2 zlib)", filepath.Join(dir, "bainode-compat.qcow2")
	}
	o := Options{
		Base: img.Disk, BaseFormat: vm.FormatQCOW2, Seed: full, Output: out, Format: FormatQCOW2, Compat: compat,
		Accel: accel, Timeout: accel.Timeout(15 * time.Minute), MemoryMiB: 1536, CPUs: 2, Version: "bench",
		HashCache: filepath.Join(dir, "hashes"), Progress: io.Discard,
	}
	if !img.Bootloader {
		o.Kernel, o.Initrd, o.Append = img.Kernel, img.Initrd, img.Append
	}
	start := time.Now()
	res, err := Bake(b.Context(), o)
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("bainode bake: %v", err)
	}
	var ph []string
	for _, s := range res.Manifest.Steps {
		if s.Seconds >= 0.05 {
			ph = append(ph, fmt.Sprintf("%s %.1f s", s.Name, s.Seconds))
		}
	}
	start = time.Now()
	again, err := Bake(b.Context(), o)
	hit := time.Since(start)
	if err != nil || !again.CacheHit {
		b.Fatalf("second bake: cache hit %v, %v", again.CacheHit, err)
	}
	return benchRow{name: name, wall: wall, output: out, phases: strings.Join(ph, ", ") + fmt.Sprintf("; cache hit %.3f s", hit.Seconds())}
}

// contentSeed is the bake seed without the seal: what Packer's guest runs,
// plus a user Packer logs in as.
func contentSeed(b *testing.B, full render.Files, pubkey string) render.Files {
	s, err := ImageSeed(full, "bench")
	if err != nil {
		b.Fatal(err)
	}
	ud := strings.Replace(string(s.UserData), "systemctl start --no-block bainode-seal.service; ", "", 1)
	ud = strings.Replace(ud, "\nusers:\n", fmt.Sprintf("\nusers:\n  - name: packer\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    shell: /bin/bash\n    ssh_authorized_keys: [%q]\n", pubkey), 1)
	if !strings.Contains(ud, "name: packer") || strings.Contains(ud, "start --no-block bainode-seal") {
		b.Fatal("could not make Packer's seed")
	}
	s.UserData = []byte(ud)
	return s
}

func benchPacker(b *testing.B, dir string, img qemu.Image, accel vm.Accel, full render.Files) benchRow {
	pdir := filepath.Join(dir, "packer")
	os.MkdirAll(pdir, 0o755)
	key := filepath.Join(pdir, "id_ed25519")
	run(b, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	pub, _ := os.ReadFile(key + ".pub")
	iso := filepath.Join(pdir, "seed.iso")
	if err := seed.WriteISO(iso, contentSeed(b, full, strings.TrimSpace(string(pub))).FS()); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(pdir, "out")
	tmpl := map[string]any{
		"builders": []map[string]any{{
			"type": "qemu", "accelerator": string(accel), "disk_image": true,
			"iso_url": img.Disk, "iso_checksum": "none", "format": "qcow2", "disk_compression": true,
			"disk_size": "4096M", "disk_interface": "virtio", "net_device": "virtio-net",
			"output_directory": out, "vm_name": "packer.qcow2", "headless": true,
			"memory": 1536, "cpus": 2,
			"qemuargs": [][]string{
				{"-cpu", "max"},
				{"-cdrom", iso},
				{"-serial", "file:" + filepath.Join(pdir, "serial.log")},
				// Its own forward on loopback only, and the guest offline like bainode's.
				{"-netdev", "user,id=user.0,restrict=on,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"},
			},
			"communicator": "ssh", "ssh_username": "packer", "ssh_private_key_file": key, "ssh_timeout": "40m",
			"shutdown_command": "sudo shutdown -P now", "shutdown_timeout": "10m",
		}},
		"provisioners": []map[string]any{{"type": "shell", "inline": []string{"sudo cloud-init status --wait"}}},
	}
	tb, _ := json.MarshalIndent(tmpl, "", "  ")
	tf := filepath.Join(pdir, "bake.json")
	os.WriteFile(tf, tb, 0o644)
	cmd := exec.CommandContext(b.Context(), "packer", "build", "-timestamp-ui", "-color=false", tf)
	cmd.Dir = pdir
	cmd.Env = append(os.Environ(), "PACKER_CACHE_DIR="+filepath.Join(pdir, "cache"), "CHECKPOINT_DISABLE=1")
	start := time.Now()
	logb, err := cmd.CombinedOutput()
	wall := time.Since(start)
	os.WriteFile(filepath.Join(os.TempDir(), "bainode-bench-packer.log"), logb, 0o644)
	if err != nil {
		b.Fatalf("packer: %v\n%s", err, logb)
	}
	return benchRow{name: "Packer QEMU builder (qcow2 zlib)", wall: wall, output: filepath.Join(out, "packer.qcow2"), phases: packerPhases(string(logb), start),
		note: "Packer's guest runs the same seed without the seal and with a `packer` login user; Packer waits for SSH, runs `cloud-init status --wait`, shuts down and compresses (`disk_compression`, zlib)."}
}

// packerPhases reads -timestamp-ui lines ("2026-...Z: ==> qemu: ...").
func packerPhases(log string, start time.Time) string {
	marks := []struct{ match, name string }{
		{"Copying hard drive", "copy"},
		{"Starting VM", "start"},
		{"Waiting for SSH", "boot to SSH"},
		{"Connected to SSH", "provision"},
		{"Gracefully halting", "shutdown"},
		{"Converting hard drive", "convert"},
		{"Builds finished", "end"},
	}
	re := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?[^:]*?):\s+(.*)$`)
	var ts []time.Time
	var names []string
	for _, l := range strings.Split(log, "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339, m[1])
		if err != nil {
			continue
		}
		for _, mk := range marks {
			if strings.Contains(m[2], mk.match) && (len(names) == 0 || names[len(names)-1] != mk.name) {
				ts, names = append(ts, t), append(names, mk.name)
			}
		}
	}
	var ph []string
	for i := 0; i+1 < len(ts); i++ {
		ph = append(ph, fmt.Sprintf("%s %.0f s", names[i], ts[i+1].Sub(ts[i]).Seconds()))
	}
	return strings.Join(ph, ", ")
}

func benchVirtCustomize(b *testing.B, dir string, img qemu.Image, full render.Files) benchRow {
	vdir := filepath.Join(dir, "virt-customize")
	os.MkdirAll(filepath.Join(vdir, "files"), 0o755)
	s, err := ImageSeed(full, "bench")
	if err != nil {
		b.Fatal(err)
	}
	var ud struct {
		WriteFiles []struct {
			Path, Content, Permissions, Encoding string
		} `yaml:"write_files"`
	}
	if err := yaml.Unmarshal(s.UserData, &ud); err != nil {
		b.Fatal(err)
	}
	work := filepath.Join(vdir, "work.qcow2")
	run(b, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img.Disk, work)
	args := []string{"-a", work, "--no-network", "-q",
		// The user and groups as cloud-init makes them from the seed.
		"--run-command", "getent group docker || groupadd docker; getent group bai || groupadd -g 1100 bai; id bai || useradd -m -u 1100 -g bai -G sudo,docker -s /bin/bash bai",
	}
	for i, wf := range ud.WriteFiles {
		if strings.Contains(wf.Path, "bainode-seal") {
			continue
		}
		data := []byte(wf.Content)
		if wf.Encoding == "gz+b64" {
			z, err := base64.StdEncoding.DecodeString(wf.Content)
			if err != nil {
				b.Fatal(err)
			}
			r, err := gzip.NewReader(bytes.NewReader(z))
			if err != nil {
				b.Fatal(err)
			}
			data, _ = io.ReadAll(r)
		}
		local := filepath.Join(vdir, "files", strconv.Itoa(i))
		os.WriteFile(local, data, 0o644)
		perm := wf.Permissions
		if perm == "" {
			perm = "0644"
		}
		args = append(args, "--mkdir", filepath.Dir(wf.Path), "--upload", local+":"+wf.Path, "--chmod", perm+":"+wf.Path)
	}
	cmd := exec.CommandContext(b.Context(), "virt-customize", args...)
	cmd.Env = append(os.Environ(), "LIBGUESTFS_BACKEND=direct")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("virt-customize: %v\n%s", err, out)
	}
	custom := time.Since(start)
	out := filepath.Join(vdir, "vc.qcow2")
	t1 := time.Now()
	run(b, "qemu-img", "convert", "-c", "-O", "qcow2", work, out)
	conv := time.Since(t1)
	return benchRow{name: "virt-customize + qemu-img convert -c (qcow2 zlib)", wall: custom + conv, output: out,
		phases: fmt.Sprintf("virt-customize %.1f s, convert %.1f s", custom.Seconds(), conv.Seconds()),
		note:   "virt-customize writes the seed's files and makes the user and groups; it boots no guest, so nothing of the plan runs (no cloud-init, no provisioning steps)."}
}

// sealedState looks into an output with guestfish: is it ready to clone?
func sealedState(b *testing.B, disk string) string {
	script := "cat /etc/machine-id\n" +
		"echo --keys\nls /etc/ssh\n" +
		"echo --cloud\n-ls /var/lib/cloud/instances\n"
	cmd := exec.CommandContext(b.Context(), "guestfish", "--ro", "-a", disk, "-i")
	cmd.Env = append(os.Environ(), "LIBGUESTFS_BACKEND=direct")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "--keys") {
		// libguestfs builds its appliance from the host's kernel: a host
		// without one in /boot (a container) cannot look inside.
		return "? (guestfish failed: " + strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0] + ")"
	}
	var problems []string
	parts := strings.SplitN(string(out), "--keys", 2)
	mid := strings.TrimSpace(parts[0])
	if mid != "" && mid != "uninitialized" {
		problems = append(problems, "machine-id set")
	}
	if len(parts) == 2 {
		kc := strings.SplitN(parts[1], "--cloud", 2)
		if strings.Contains(kc[0], "ssh_host_") {
			problems = append(problems, "SSH host keys")
		}
		if len(kc) == 2 {
			sc := bufio.NewScanner(strings.NewReader(kc[1]))
			for sc.Scan() {
				if l := strings.TrimSpace(sc.Text()); l != "" && !strings.Contains(l, "No such file") && !strings.HasPrefix(l, "libguestfs:") {
					problems = append(problems, "cloud-init instance "+l)
					break
				}
			}
		}
	}
	if len(problems) == 0 {
		return "yes"
	}
	return "no: " + strings.Join(problems, ", ")
}

func run(b *testing.B, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v: %s", name, err, out)
	}
}

func packerVersion() string {
	out, _ := exec.Command("packer", "version").Output()
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func runtimeCPUs() int {
	n := 0
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "processor") {
			n++
		}
	}
	return n
}
