//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/fleet"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/templates"
	"github.com/lablup/bainode/testing/qemu"
)

// guestfwdArg makes the test binary a one-connection TCP relay: QEMU's
// guestfwd "cmd:" runs it once per guest connection with the connection on
// stdin and stdout, and it copies both ways to the daemon's 127.0.0.1 port.
// The "tcp:" form of guestfwd would connect once at QEMU's start and squeeze
// every guest connection through that one stream, which HTTP cannot use;
// netcat would do the same job but is not on every host.
const guestfwdArg = "bainoded-vmtest-guestfwd"

func init() {
	if len(os.Args) == 3 && os.Args[1] == guestfwdArg {
		os.Exit(relay(os.Args[2], os.Stdin, os.Stdout))
	}
}

// relay copies in to addr and addr's answer to out, and returns when the
// server has closed its side. Nothing may go to stderr: QEMU hands the guest
// connection to the child as stderr too.
func relay(addr string, in io.Reader, out io.Writer) int {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 1
	}
	defer conn.Close()
	go func() {
		io.Copy(conn, in)
		conn.(*net.TCPConn).CloseWrite() // the guest is done sending
	}()
	io.Copy(out, conn)
	return 0
}

// guestAddr is where the guest finds bainoded: a guestfwd address inside
// QEMU's user-mode network, which restrict=on leaves as the only way out.
const (
	guestAddr = "10.0.2.100:80"
	guestBase = "http://10.0.2.100"
	// qemuMAC is the address QEMU gives the first NIC when none is set;
	// vm.Config has no MAC field, so the node is registered with this one
	// and the seed URL names the node by hostname.
	qemuMAC = "52:54:00:12:34:56"
)

// TestVMCloudInitFromDaemon boots the Debian base with no seed drive at all:
// the SMBIOS serial carries NoCloud's line configuration pointing at
// bainoded, which serves the vm-test site's bai-vm seed, collects cloud-init's
// reporting events and its phone_home, and shows them on /api/v1/status.
// The in-guest verifier's report on the serial console must pass.
func TestVMCloudInitFromDaemon(t *testing.T) {
	img := qemu.Need(t) // skips without QEMU outside CI; fails with CI=true
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatalf("accel: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(exe, " '\"\\") {
		t.Fatalf("test binary path %q would need shell quoting in QEMU's guestfwd", exe)
	}

	dir := t.TempDir()
	token := "vm-test-admin-token-0123456789abcdef"
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, admin := freeAddr(t), freeAddr(t)
	d := startDaemon(t, "--data", filepath.Join(dir, "data"), "--listen", addr, "--admin-listen", admin,
		"--admin-token-file", tokenFile, "--base-url", guestBase, "--log-level", "info")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bainoded output:\n%s", tail(d.out.String(), 8000))
		}
	})
	waitGet(t, http.DefaultClient, "http://"+addr+"/healthz").Body.Close()

	ctx := t.Context()
	fc := &fleet.Client{BaseURL: "http://" + admin, Token: token}
	site, err := fs.ReadFile(templates.FS, "examples/vm-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.PushSite(ctx, site); err != nil {
		t.Fatalf("push site: %v", err)
	}
	if _, err := fc.PutNode(ctx, fleet.Node{Hostname: "bai-vm", MACs: []string{qemuMAC}, Role: "all-in-one"}); err != nil {
		t.Fatalf("add node: %v", err)
	}
	// What the guest will read: vendor-data must send its reports through
	// the guest-side address, or they would go nowhere.
	resp := waitGet(t, http.DefaultClient, "http://"+addr+"/nocloud/bai-vm/vendor-data")
	if vd := readBody(resp); resp.StatusCode != 200 || !strings.Contains(vd, guestBase+"/report/bai-vm/") ||
		!strings.Contains(vd, guestBase+"/phone-home/bai-vm/") {
		t.Fatalf("vendor-data: %d\n%s", resp.StatusCode, vd)
	}

	start := time.Now()
	m := qemu.Boot(t, vm.Config{
		Accel: accel, MemoryMiB: 2048, CPUs: 2,
		// No Drives: no seed ISO. The trailing slash matters to cloud-init.
		SMBIOSSerial:  "ds=nocloud-net;s=" + guestBase + "/nocloud/bai-vm/",
		GuestForwards: []vm.GuestForward{{GuestAddr: guestAddr, Cmd: exe + " " + guestfwdArg + " " + addr}},
	})
	bootCtx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	// Progress for a slow TCG boot: one line each time the node reports.
	watchCtx, stopWatch := context.WithCancel(bootCtx)
	watching := make(chan struct{})
	go func() { defer close(watching); watchEvents(watchCtx, t, fc, start) }()
	defer func() { stopWatch(); <-watching }()

	if err := m.WaitFor(bootCtx, verify.EndMarker); err != nil {
		t.Fatalf("verifier report: %v (after %s)", err, time.Since(start).Round(time.Second))
	}
	booted := time.Since(start)
	stopWatch()
	<-watching
	rep, err := extract(m)
	if err != nil {
		t.Fatalf("verifier report: %v", err)
	}
	var table bytes.Buffer
	verify.WriteTable(&table, rep)
	t.Logf("verifier report for %s after %s:\n%s", rep.Host, booted.Round(time.Second), table.String())
	if rep.Host != "bai-vm" {
		t.Errorf("report host %q, want bai-vm (the seed bainoded served for it)", rep.Host)
	}
	// The seed came over the network from the SMBIOS line, not from a drive.
	for _, c := range rep.Checks {
		if c.ID == "cloudinit.datasource" && (!strings.Contains(c.Actual, "NoCloudNet") || !strings.Contains(c.Actual, "seed=dmi,"+guestBase+"/nocloud/")) {
			t.Errorf("cloud-init data source %q, want NoCloudNet seeded from dmi,%s/nocloud/...", c.Actual, guestBase)
		}
	}
	for _, c := range rep.Failures() {
		t.Errorf("check %s failed: expected %q, actual %q (%s)", c.ID, c.Expected, c.Actual, c.Detail)
	}
	if rep.Count().Pass == 0 {
		t.Errorf("no check passed: %+v", rep.Count())
	}

	// The verifier starts after cloud-final, so every report was sent by
	// now; the last ones may still be on their way into the store.
	var events []fleet.Event
	var status fleet.NodeStatus
	var problem string
	deadline := time.Now().Add(time.Minute)
	for {
		events, status, problem = checkProgress(ctx, fc)
		if problem == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	var log strings.Builder
	for _, e := range events {
		fmt.Fprintf(&log, "  %s  %-45s %-8s %s\n", e.Time.Format("15:04:05"), e.Stage, e.Result, e.Detail)
	}
	t.Logf("%d events of bai-vm:\n%s", len(events), log.String())
	t.Logf("status of bai-vm: stage %q, result %q at %s", status.Stage, status.Result, status.Time.Format(time.RFC3339))
	if problem != "" {
		t.Error(problem)
	}
	t.Logf("boot to verifier report: %s", booted.Round(time.Second))
}

// checkProgress reads the status and events of bai-vm and says what is
// missing: every cloud-init stage that runs with reporting configured, in
// order, the phone_home post, the final stage's success, and no failures.
func checkProgress(ctx context.Context, fc *fleet.Client) ([]fleet.Event, fleet.NodeStatus, string) {
	var status fleet.NodeStatus
	events, err := fc.Events(ctx, "bai-vm", 0)
	if err != nil {
		return nil, status, fmt.Sprintf("events: %v", err)
	}
	all, err := fc.Status(ctx)
	if err != nil {
		return events, status, fmt.Sprintf("status: %v", err)
	}
	i := slices.IndexFunc(all, func(s fleet.NodeStatus) bool { return s.Node == "bai-vm" })
	if i < 0 {
		return events, status, "status does not list bai-vm"
	}
	status = all[i]

	// init-local runs before the seed is read, so its events cannot be
	// reported; init-network reports from the moment vendor-data is applied.
	var order []string
	finished := map[string]string{}
	for _, e := range events {
		stage, _, _ := strings.Cut(e.Stage, "/")
		if len(order) == 0 || order[len(order)-1] != stage {
			if !slices.Contains(order, stage) {
				order = append(order, stage)
			}
		}
		if e.Stage == stage && e.Result != "start" {
			finished[stage] = e.Result
		}
		if e.Result == "fail" {
			return events, status, fmt.Sprintf("event %s failed: %s", e.Stage, e.Detail)
		}
	}
	want := []string{"init-network", "modules-config", "modules-final"}
	var seen []string
	for _, s := range order {
		if slices.Contains(want, s) {
			seen = append(seen, s)
		}
	}
	if !slices.Equal(seen, want) {
		return events, status, fmt.Sprintf("cloud-init stages reported in order %v, want %v", seen, want)
	}
	for _, s := range want {
		if finished[s] != "success" {
			return events, status, fmt.Sprintf("stage %s finished with %q, want success", s, finished[s])
		}
	}
	ph := slices.IndexFunc(events, func(e fleet.Event) bool { return e.Stage == "phone-home" })
	if ph < 0 || events[ph].Result != "done" || !strings.Contains(events[ph].Detail, "hostname=bai-vm") {
		return events, status, "no phone-home from bai-vm among the events"
	}
	if status.Result == "pending" || status.Time.IsZero() {
		return events, status, fmt.Sprintf("status of bai-vm is %q", status.Result)
	}
	if last := events[len(events)-1]; status.Stage != last.Stage || status.Result != last.Result {
		return events, status, fmt.Sprintf("status shows %s/%s, but the last event is %s/%s",
			status.Stage, status.Result, last.Stage, last.Result)
	}
	if status.Stage != "modules-final" && status.Stage != "phone-home" {
		return events, status, fmt.Sprintf("status of bai-vm ends at %q, want the final stage or phone-home", status.Stage)
	}
	return events, status, ""
}

// extract reads the report. One copy is printed per console device; when
// the first has just ended, a second may be half written, so a failed read
// gets one more try a moment later.
func extract(m *vm.Machine) (verify.Report, error) {
	rep, err := verify.Extract([]byte(m.Output()))
	if err != nil {
		time.Sleep(3 * time.Second)
		rep, err = verify.Extract([]byte(m.Output()))
	}
	return rep, err
}

// watchEvents logs each new event of bai-vm while the guest boots.
func watchEvents(ctx context.Context, t *testing.T, fc *fleet.Client, start time.Time) {
	seen := 0
	for ctx.Err() == nil {
		if ev, err := fc.Events(ctx, "bai-vm", 0); err == nil {
			for _, e := range ev[min(seen, len(ev)):] {
				t.Logf("[%4ds] event %s %s", int(time.Since(start).Seconds()), e.Stage, e.Result)
			}
			seen = max(seen, len(ev))
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
