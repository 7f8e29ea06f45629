package bake

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Undo functions run last first on failure, including the failing step's
// own; on success only the Always ones run.
func TestRunStepsUnwind(t *testing.T) {
	for _, fail := range []bool{false, true} {
		var log []string
		s := &State{}
		step := func(name string) Step {
			return Step{name, func(_ context.Context, s *State) error {
				s.OnFail(name, func() error { log = append(log, "undo "+name); return nil })
				if name == "c" && fail {
					return errors.New("boom")
				}
				return nil
			}}
		}
		steps := []Step{
			{"dir", func(_ context.Context, s *State) error {
				s.Always("dir", func() error { log = append(log, "rm dir"); return nil })
				return nil
			}},
			step("a"), step("b"), step("c"),
		}
		err := runSteps(context.Background(), s, steps, nil2())
		want := []string{"rm dir"}
		if fail {
			want = []string{"undo c", "undo b", "undo a", "rm dir"}
			if err == nil || !strings.Contains(err.Error(), "c: boom") {
				t.Errorf("err = %v, want c: boom", err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(log, want) {
			t.Errorf("fail=%v: cleanups %q, want %q", fail, log, want)
		}
		if len(s.Manifest.Steps) != map[bool]int{false: 4, true: 4}[fail] {
			t.Errorf("step times: %v", s.Manifest.Steps)
		}
	}
}

// A cancelled context (Ctrl-C) stops before the next step and unwinds.
func TestRunStepsCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var undone, ran2 bool
	s := &State{}
	err := runSteps(ctx, s, []Step{
		{"one", func(_ context.Context, s *State) error {
			s.OnFail("one", func() error { undone = true; return nil })
			cancel()
			return nil
		}},
		{"two", func(context.Context, *State) error { ran2 = true; return nil }},
	}, nil2())
	if !errors.Is(err, context.Canceled) || !undone || ran2 {
		t.Errorf("err %v, undone %v, step two ran %v", err, undone, ran2)
	}
}

func nil2() *strings.Builder { return &strings.Builder{} }

// The bake seed runs the image phase, queues the seal, drops the hostname
// and carries the seal script and unit.
func TestImageSeed(t *testing.T) {
	site, n := testSite(t, "4096")
	f := renderSeed(t, site, n)
	out, err := ImageSeed(f, "MARK")
	if err != nil {
		t.Fatal(err)
	}
	var ud struct {
		Hostname   *string    `yaml:"hostname"`
		Runcmd     [][]string `yaml:"runcmd"`
		WriteFiles []struct {
			Path    string `yaml:"path"`
			Content string `yaml:"content"`
		} `yaml:"write_files"`
		Users []map[string]any `yaml:"users"`
	}
	if err := yaml.Unmarshal(out.UserData, &ud); err != nil {
		t.Fatal(err)
	}
	if ud.Hostname != nil {
		t.Errorf("bake seed sets hostname %q", *ud.Hostname)
	}
	if len(ud.Runcmd) != 1 || !strings.Contains(strings.Join(ud.Runcmd[0], " "), "BAINODE_PHASE=image exec /usr/local/sbin/bainode-provision") ||
		!strings.Contains(strings.Join(ud.Runcmd[0], " "), "systemctl start --no-block bainode-seal.service") {
		t.Errorf("runcmd %q", ud.Runcmd)
	}
	paths := map[string]string{}
	for _, w := range ud.WriteFiles {
		paths[w.Path] = w.Content
	}
	if paths["/usr/local/sbin/bainode-seal"] != sealScript || paths["/etc/systemd/system/bainode-seal.service"] != sealUnit {
		t.Error("seal script or unit missing or changed")
	}
	if _, ok := paths["/usr/local/sbin/bainode-provision"]; !ok && len(ud.WriteFiles) < 4 {
		t.Errorf("the node's files are gone: %v", len(ud.WriteFiles))
	}
	if len(ud.Users) != 1 || ud.Users[0]["passwd"] != testHash {
		t.Errorf("users %v", ud.Users)
	}
	if !strings.Contains(string(out.UserData), "MARK") || !strings.Contains(string(out.MetaData), "instance-id: bainode-bake\n") {
		t.Error("marker missing")
	}
	// Nothing of the node: its name, network, hosts block, verifier and
	// node-phase settings.
	if strings.Contains(string(out.UserData), n.Hostname) || len(out.NetworkConfig) != 0 {
		t.Errorf("the bake seed names the node or carries its network:\n%s\n%s", out.UserData, out.NetworkConfig)
	}
	for _, p := range []string{"/etc/bainode/hosts.block", "/etc/bainode/verify.env"} {
		if _, ok := paths[p]; ok {
			t.Errorf("the bake seed writes %s", p)
		}
	}
	env := paths[provisionEnv]
	if !strings.Contains(env, "\nSYSCTL=1\n") || strings.Contains(env, "HOSTS_BEGIN=") || strings.Contains(env, "VFROOT_LOCAL=") {
		t.Errorf("provision.env in the bake seed:\n%s", env)
	}
	// The apt timers are held first thing in bootcmd.
	var bc struct {
		Bootcmd [][]string `yaml:"bootcmd"`
	}
	yaml.Unmarshal(out.UserData, &bc)
	if len(bc.Bootcmd) < 2 || !strings.Contains(strings.Join(bc.Bootcmd[0], " "), "systemctl mask --runtime apt-daily.timer") {
		t.Errorf("bootcmd %q", bc.Bootcmd)
	}
}

// The seal reads what bootcmd noted of the held units where bootcmd wrote it.
func TestHeldFileContract(t *testing.T) {
	if !strings.Contains(sealScript, `HELD = "`+heldFile+`"`) || !strings.Contains(holdCmd(), ">"+heldFile+";") {
		t.Errorf("the seal script and the hold command disagree on %s", heldFile)
	}
}

// The settings the bake seed leaves out are read by node-phase steps only.
func TestNodeEnvKeys(t *testing.T) {
	b, err := os.ReadFile("../../overlays/provision/bainode-provision")
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	phase := regexp.MustCompile(`\timage\) steps=\(([^)]*)\)`).FindStringSubmatch(script)
	if phase == nil {
		t.Fatal("bainode-provision has no image phase")
	}
	for _, st := range append(strings.Fields(phase[1]), "payload", "unmount") {
		body := funcBody(t, script, "step_"+st)
		for _, k := range nodeEnvKeys {
			if regexp.MustCompile(`\b` + k + `\b`).MatchString(body) {
				t.Errorf("image step %s reads %s, which the bake seed leaves out", st, k)
			}
		}
	}
	tmpl, err := os.ReadFile("../../templates/cloud-init/provision.env.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range nodeEnvKeys {
		if !strings.Contains(string(tmpl), "\n"+k+"=") {
			t.Errorf("provision.env has no %s", k)
		}
	}
}

// funcBody returns a bash function's text, up to the next line "}".
func funcBody(t *testing.T, script, name string) string {
	t.Helper()
	i := strings.Index(script, "\n"+name+"() {")
	if i < 0 {
		t.Fatalf("bainode-provision has no %s", name)
	}
	j := strings.Index(script[i:], "\n}\n")
	return script[i : i+j]
}

// The provisioning script knows the phases the bake uses.
func TestProvisionPhases(t *testing.T) {
	b, err := os.ReadFile("../../overlays/provision/bainode-provision")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{PhaseImage, PhaseNode} {
		if !strings.Contains(string(b), "\t"+p+") steps=(") {
			t.Errorf("bainode-provision has no BAINODE_PHASE=%s", p)
		}
	}
}

// The cache key: the same inputs give the same key, one changed sysctl
// value another; the seed's random marker is not part of it.
func TestCacheKey(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, []byte("not really a disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := func(sysctl string) Options {
		site, n := testSite(t, sysctl)
		return Options{Base: base, BaseFormat: "raw", Seed: renderSeed(t, site, n), Format: FormatQCOW2, Version: "v1", HashCache: filepath.Join(dir, "h")}
	}
	_, k1, err := opts("4096").inputs()
	if err != nil {
		t.Fatal(err)
	}
	_, k2, _ := opts("4096").inputs()
	_, k3, _ := opts("8192").inputs()
	if k1 != k2 {
		t.Errorf("same inputs, keys %s and %s", k1, k2)
	}
	if k1 == k3 {
		t.Error("a changed sysctl value kept the key")
	}
	o := opts("4096")
	o.Format = FormatRawZst
	if _, k4, _ := o.inputs(); k4 == k1 {
		t.Error("another format kept the key")
	}
	// Another node of the role, with its own address and name, bakes the
	// same image: nothing node-specific is in the key.
	site, n := testSite(t, "4096")
	n.Hostname, n.IP, n.Gateway, n.MAC = "bai-vm7", "10.20.30.77/24", "10.20.30.1", "52:54:00:12:34:77"
	o = opts("4096")
	o.Seed = renderSeed(t, site, n)
	if !strings.Contains(string(o.Seed.NetworkConfig), "10.20.30.77") || !strings.Contains(string(o.Seed.UserData), "bai-vm7") {
		t.Fatalf("the second node's seed lacks its address or name")
	}
	if _, k6, err := o.inputs(); err != nil || k6 != k1 {
		t.Errorf("another node of the role: key %s (err %v), want %s", k6, err, k1)
	}
	// A changed base (same path, new content and mtime) is a new key.
	if err := os.WriteFile(base, []byte("another disk, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, k5, _ := opts("4096").inputs(); k5 == k1 {
		t.Error("a changed base kept the key")
	}
}

// A framed report survives noise between its lines.
func TestParseSealReport(t *testing.T) {
	console := "boot...\n" + sealBegin + "\nbainode-seal-report v1 bytes=38 sha256=" +
		"c3c5b8fbbf6ba2a4b9a4b0c1ba6c6e3b7a49c6b3d30d0cd5cdf1c2b0b8a0b5e1 lines=1\nbsr 0001 eyJ2ZXJzaW9uIjoxLCJjbG91ZF9pbml0X3N0YXR1cyI6ImRvbmUifQ==\n" + sealEnd + "\n"
	if _, err := parseSealReport(console); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("bad checksum: err %v", err)
	}
	// A good frame, made by the seal script's own emit(), with console noise
	// inside a line and between lines.
	out, err := exec.Command("python3", "-c", "import importlib.machinery as m, sys; s = m.SourceFileLoader('seal', 'bainode-seal').load_module(); s.report['cloud_init_status'] = 'done'; s.report['kernels'] = ['6.1.0-x'] * 40; s.emit()").Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	lines := strings.Split(string(out), "\n")
	noisy := strings.Join(lines[:4], "\n[  12.3] systemd[1]: noise\n") + "\n" + strings.Join(lines[4:], "\n")
	rep, err := parseSealReport("kernel boot\n" + strings.Replace(noisy, "bsr 0002", "[ 9.9] x: bsr 0002", 1))
	if err != nil || rep.CloudInitStatus != "done" || len(rep.Kernels) != 40 {
		t.Errorf("good frame: %v, %+v", err, rep)
	}
	if _, err := parseSealReport(strings.Replace(string(out), "bsr 0002", "bsr 0009", 1)); err == nil || !strings.Contains(err.Error(), "line 2 of") {
		t.Errorf("lost line: err %v", err)
	}
	if _, err := parseSealReport("no report"); !errors.Is(err, errNoSealReport) {
		t.Errorf("err %v", err)
	}
}

// Two nodes of one role share the plan hash; the thin node seed keeps
// only the node's part and runs the node phase; another plan is refused.
func TestNodeSeed(t *testing.T) {
	site, n := testSite(t, "4096")
	f := renderSeed(t, site, n)
	h1, err := PlanHash(f)
	if err != nil {
		t.Fatal(err)
	}
	n2 := *n
	n2.Hostname = "bai-vm2"
	f2 := renderSeed(t, site, &n2)
	if h2, _ := PlanHash(f2); h2 != h1 {
		t.Error("another hostname changed the plan hash")
	}
	site3, n3 := testSite(t, "8192")
	f3 := renderSeed(t, site3, n3)
	m := Manifest{Inputs: Inputs{Plan: h1}}
	if err := CheckPlan(m, f2); err != nil {
		t.Errorf("same plan refused: %v", err)
	}
	if err := CheckPlan(m, f3); err == nil || !strings.Contains(err.Error(), "not the one the image was baked from") {
		t.Errorf("changed sysctl accepted: %v", err)
	}
	thin, err := NodeSeed(f2)
	if err != nil {
		t.Fatal(err)
	}
	var ud struct {
		Hostname   string           `yaml:"hostname"`
		Users      []map[string]any `yaml:"users"`
		Runcmd     [][]string       `yaml:"runcmd"`
		WriteFiles []struct {
			Path string `yaml:"path"`
		} `yaml:"write_files"`
	}
	if err := yaml.Unmarshal(thin.UserData, &ud); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, w := range ud.WriteFiles {
		paths = append(paths, w.Path)
	}
	slices.Sort(paths)
	if ud.Hostname != "bai-vm2" || ud.Users != nil || !slices.Equal(paths, []string{"/etc/bainode/hosts.block", "/etc/bainode/provision.env", "/etc/bainode/verify.env"}) ||
		len(ud.Runcmd) != 1 || !strings.Contains(ud.Runcmd[0][2], "BAINODE_PHASE=node") {
		t.Errorf("thin seed: %+v, files %q", ud, paths)
	}
	if strings.Contains(string(thin.UserData), testHash) {
		t.Error("the thin seed carries the password hash")
	}
	if len(thin.UserData) >= 16<<10 || len(thin.UserData)*2 > len(f2.UserData) {
		t.Errorf("thin seed is %d bytes (full %d)", len(thin.UserData), len(f2.UserData))
	}
}

// The guest's attempts are read from a pcap of its NIC; what every boot
// sends (DHCP, ARP, neighbour discovery) and the virtual router's frames
// do not count.
func TestNetAttempts(t *testing.T) {
	guest := []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	router := []byte{0x52, 0x55, 10, 0, 2, 2}
	eth := func(src []byte, typ uint16, payload []byte) []byte {
		return append(append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src...), byte(typ>>8), byte(typ)), payload...)
	}
	ip4 := func(proto byte, dst [4]byte, l4 []byte) []byte {
		h := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 2, 15}
		return append(append(h, dst[:]...), l4...)
	}
	udp := func(dport uint16, data []byte) []byte {
		return append([]byte{0x30, 0x39, byte(dport >> 8), byte(dport), 0, 0, 0, 0}, data...)
	}
	tcp := func(dport uint16, flags byte) []byte {
		return []byte{0x30, 0x39, byte(dport >> 8), byte(dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0, 0, 0, 0, 0, 0}
	}
	dnsQ := append([]byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, "\x03deb\x06debian\x03org\x00\x00\x01\x00\x01"...)
	frames := [][]byte{
		eth(guest, 0x0806, make([]byte, 28)),                                   // ARP
		eth(guest, 0x0800, ip4(17, [4]byte{255, 255, 255, 255}, udp(67, nil))), // DHCP
		eth(guest, 0x0800, ip4(17, [4]byte{10, 0, 2, 3}, udp(53, dnsQ))),       // DNS
		eth(guest, 0x0800, ip4(17, [4]byte{10, 0, 2, 3}, udp(53, dnsQ))),       // again
		eth(guest, 0x0800, ip4(6, [4]byte{192, 0, 2, 7}, tcp(8080, 0x02))),     // SYN
		eth(router, 0x0800, ip4(6, [4]byte{10, 0, 2, 15}, tcp(12345, 0x12))),   // the router's SYN-ACK
		eth(guest, 0x0800, ip4(6, [4]byte{192, 0, 2, 7}, tcp(8080, 0x10))),     // an ACK
		eth(guest, 0x0800, ip4(1, [4]byte{192, 0, 2, 9}, []byte{8, 0, 0, 0})),  // ping
		eth(guest, 0x0800, ip4(17, [4]byte{224, 0, 0, 251}, udp(5353, dnsQ))),  // multicast
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, 0xa1b2c3d4))
	b.Write([]byte{2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	b.Write(le.AppendUint32(nil, 65535))
	b.Write(le.AppendUint32(nil, 1))
	for _, f := range frames {
		b.Write(make([]byte, 8))
		b.Write(le.AppendUint32(nil, uint32(len(f))))
		b.Write(le.AppendUint32(nil, uint32(len(f))))
		b.Write(f)
	}
	b.Write([]byte{1, 2, 3}) // a record QEMU's end cut short
	path := filepath.Join(t.TempDir(), "net.pcap")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := netAttempts(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []NetAttempt{{"DNS query for deb.debian.org", 2}, {"TCP 192.0.2.7:8080", 1}, {"ping 192.0.2.9", 1}}
	if !slices.Equal(got, want) {
		t.Errorf("attempts %v, want %v", got, want)
	}
	msg := (&NetworkError{Attempts: got}).Error()
	if !strings.Contains(msg, "the guest tried the network") || !strings.Contains(msg, "DNS query for deb.debian.org (x2)") {
		t.Errorf("message: %s", msg)
	}
}

// qcow2 outputs are zstd by default and zlib with Compat; both read back.
func TestConvertQCOW2(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	data := bytes.Repeat([]byte("bainode compresses this\n"), 1<<16)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, compat := range []bool{false, true} {
		dst := filepath.Join(dir, fmt.Sprintf("out-%v.qcow2", compat))
		if err := convertQCOW2(t.Context(), src, dst, compat, 2); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("qemu-img", "info", "--output=json", dst).Output()
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			Format   string `json:"format"`
			Specific struct {
				Data struct {
					Compat          string `json:"compat"`
					CompressionType string `json:"compression-type"`
				} `json:"data"`
			} `json:"format-specific"`
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatal(err)
		}
		if got, want := info.Specific.Data.CompressionType, qcow2Compression(compat); got != want && !(compat && got == "") {
			t.Errorf("compat=%v: compression %q, want %q", compat, got, want)
		}
		if compat && info.Specific.Data.Compat != "0.10" {
			t.Errorf("compat: qcow2 version %q", info.Specific.Data.Compat)
		}
		back := filepath.Join(dir, "back.raw")
		if out, err := exec.Command("qemu-img", "convert", "-O", "raw", dst, back).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if b, _ := os.ReadFile(back); !bytes.Equal(b, data) {
			t.Errorf("compat=%v: the output does not read back", compat)
		}
	}
}
