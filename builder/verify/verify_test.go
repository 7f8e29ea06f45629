package verify

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/internal/golden"
)

// goldenFile compares got with testdata/name, or rewrites it with -update.
func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

func readReport(t *testing.T, name string) (Report, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return r, b
}

func TestParse(t *testing.T) {
	r, _ := readReport(t, "report.json")
	if got, want := r.Host, "bai-a01"; got != want {
		t.Errorf("host: got %q, want %q", got, want)
	}
	if got, want := r.Summary, (Summary{Pass: 7, Fail: 3, Skip: 1}); got != want {
		t.Errorf("summary: got %+v, want %+v", got, want)
	}
	if !r.Failed() {
		t.Errorf("Failed: got false, want true")
	}
	if got, want := len(r.Failures()), 3; got != want {
		t.Errorf("Failures: got %d, want %d", got, want)
	}
	c := r.Checks[2]
	if want := `errors: ["('scripts_user', RuntimeError(\"Runparts: 1 failures (runcmd) in 1 attempted commands\"))" ] } }`; c.Actual != want {
		t.Errorf("escaped actual: got %q, want %q", c.Actual, want)
	}
	if got, want := r.Checks[10].Detail, "café ✓ non-ASCII survives Go's side"; got != want {
		t.Errorf("unicode detail: got %q, want %q", got, want)
	}
}

func TestFailed(t *testing.T) {
	ok := Report{Version: 1, Checks: []Check{{ID: "a", Status: StatusPass}, {ID: "b", Status: StatusSkip}}}
	if ok.Failed() {
		t.Errorf("pass+skip: Failed got true, want false")
	}
	bad := Report{Version: 1, Checks: []Check{{ID: "a", Status: StatusPass}, {ID: "b", Status: StatusFail}}}
	if !bad.Failed() {
		t.Errorf("with a fail: Failed got false, want true")
	}
}

func TestParseErrors(t *testing.T) {
	const one = `{"id":"a","status":"pass","expected":"","actual":"","detail":""}`
	tests := []struct {
		name, in, want string
	}{
		{"not json", `{"version":1,`, "unexpected EOF"},
		{"version", `{"version":2,"host":"h","checks":[` + one + `],"summary":{"pass":1,"fail":0,"skip":0}}`, "version 2, want 1"},
		{"no checks", `{"version":1,"host":"h","checks":[],"summary":{"pass":0,"fail":0,"skip":0}}`, "no checks"},
		{"empty id", `{"version":1,"checks":[{"id":"","status":"pass"}],"summary":{"pass":1}}`, "check 0 has no id"},
		{"duplicate", `{"version":1,"checks":[` + one + `,` + one + `],"summary":{"pass":2}}`, `duplicate check id "a"`},
		{"status", `{"version":1,"checks":[{"id":"a","status":"PASS"}],"summary":{"pass":1}}`, `status "PASS" is not pass, fail or skip`},
		{"summary", `{"version":1,"checks":[` + one + `],"summary":{"pass":0,"fail":1,"skip":0}}`, "does not match the checks"},
		{"missing summary", `{"version":1,"checks":[` + one + `]}`, "does not match the checks"},
		{"trailing", `{"version":1,"checks":[` + one + `],"summary":{"pass":1}} {"version":1}`, "data after the report"},
		{"truncated", `{"version":1,"checks":[` + one, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	r, _ := readReport(t, "report.json")
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	goldenFile(t, "report.table.golden", b.Bytes())
	for i, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if strings.ContainsAny(line, "\t\r") {
			t.Errorf("line %d has a tab or CR: %q", i+1, line)
		}
	}
}

func TestWriteJUnit(t *testing.T) {
	r, _ := readReport(t, "report.json")
	var b bytes.Buffer
	if err := WriteJUnit(&b, r, "bai-a01"); err != nil {
		t.Fatal(err)
	}
	goldenFile(t, "report.junit.golden", b.Bytes())

	// It must be well-formed XML that reads back with the right counts.
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("junit output is not XML: %v", err)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("suites: got %d, want 1", len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Tests != 11 || s.Failures != 3 || s.Skipped != 1 || s.Errors != 0 {
		t.Errorf("counts: got tests=%d failures=%d skipped=%d errors=%d, want 11 3 1 0", s.Tests, s.Failures, s.Skipped, s.Errors)
	}
	var failures, skipped int
	for _, c := range s.Cases {
		if c.Failure != nil {
			failures++
		}
		if c.Skipped != nil {
			skipped++
		}
	}
	if failures != 3 || skipped != 1 {
		t.Errorf("elements: got %d <failure> and %d <skipped>, want 3 and 1", failures, skipped)
	}
	if got, want := s.Cases[5].Classname, "bai-a01.sysctl"; got != want {
		t.Errorf("classname: got %q, want %q", got, want)
	}
	// The detail had "<nas> & friends" and a tab: escaped, not broken.
	if got := s.Cases[7].Failure.Text; !strings.Contains(got, "<nas> & friends\twhile") {
		t.Errorf("failure text did not round-trip: %q", got)
	}
}

func TestWriteJUnitDefaultName(t *testing.T) {
	r := Report{Version: 1, Host: "node\x01<1>", Checks: []Check{{ID: "x", Status: StatusFail, Detail: "bad\x00byte"}}, Summary: Summary{Fail: 1}}
	var b bytes.Buffer
	if err := WriteJUnit(&b, r, ""); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("control characters broke the XML: %v\n%s", err, b.Bytes())
	}
	if got := doc.Suites[0].Name; !strings.HasPrefix(got, "node") {
		t.Errorf("suite name: got %q, want the host", got)
	}
}

// console logs as a serial capture sees them: kernel and systemd lines,
// \r\n, timestamps.
func consoleCases(t *testing.T) map[string][]byte {
	t.Helper()
	_, pass := readReport(t, "report.json")
	passing := []byte(`{"version":1,"host":"bai-a01","checks":[` + "\n" +
		`{"id":"env.file","status":"pass","expected":"all 19 keys set and valid","actual":"/etc/bainode/verify.env","detail":""}` + "\n" +
		`],"summary":{"pass":1,"fail":0,"skip":0}}` + "\n")
	frame := func(b []byte) string {
		var s strings.Builder
		if err := Frame(&s, b); err != nil {
			t.Fatal(err)
		}
		return s.String()
	}
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	boot := "[    0.000000] Linux version 5.15.0-91-generic (buildd@lcy02-amd64-045)\n" +
		"[  OK  ] Started Execute cloud user/final scripts.\n"
	// Kernel lines between ours, timestamps in front of some.
	interleave := func(fr string) string {
		var s strings.Builder
		for i, line := range strings.Split(strings.TrimSuffix(fr, "\n"), "\n") {
			if i%7 == 3 {
				fmt.Fprintf(&s, "[   %d.123456] audit: type=1400 apparmor=\"STATUS\"\n", 40+i)
			}
			if i%5 == 2 {
				s.WriteString("12:00:0" + fmt.Sprint(i%10) + " ")
			}
			s.WriteString(line + "\n")
		}
		return s.String()
	}
	good := frame(pass)
	lines := strings.Split(good, "\n")
	// A kernel message inside line 4 of the frame (header is lines[2]).
	split := append([]string{}, lines...)
	split[5] = split[5][:30] + "[   41.5] random: crng init done\n" + split[5][30:]
	// A lost line.
	lost := append(append([]string{}, lines[:6]...), lines[7:]...)
	badHeader := headerRE.ReplaceAllString(lines[2], "bainode-verify-report v1 bytes=${2} sha256="+strings.Repeat("0", 64)+" lines=${4}")
	raw := "\n" + BeginMarker + "\n" + string(pass) + EndMarker + "\n"

	return map[string][]byte{
		"boot":          []byte(crlf(boot + interleave(good) + "Ubuntu 20.04.6 LTS bai-a01 ttyS0\n\nbai-a01 login: ")),
		"cr-only":       []byte(strings.ReplaceAll(boot+good, "\n", "\r")),
		"twice":         []byte(boot + frame(passing) + boot + good),
		"newest-passes": []byte(boot + good + boot + frame(passing)),
		"duplicate-damaged": []byte(boot + good + "systemd[1]: Finished bainode-verify.service.\n" +
			strings.Join(split, "\n")),
		"split-line": []byte(boot + strings.Join(split, "\n")),
		"lost-line":  []byte(boot + strings.Join(lost, "\n")),
		"truncated":  []byte(boot + good + boot + strings.Join(lines[:8], "\n")),
		"raw-json":   []byte(crlf(boot + raw)),
		"none":       []byte(boot),
		"bad-sum":    []byte(strings.Replace(good, lines[2], badHeader, 1)),
	}
}

func TestExtract(t *testing.T) {
	cases := consoleCases(t)
	for _, name := range []string{"boot", "cr-only", "twice", "newest-passes", "duplicate-damaged",
		"split-line", "lost-line", "truncated", "raw-json", "none", "bad-sum"} {
		t.Run(name, func(t *testing.T) {
			r, err := Extract(cases[name])
			var out bytes.Buffer
			if err != nil {
				fmt.Fprintf(&out, "error: %v\n", err)
			} else if err := WriteTable(&out, r); err != nil {
				t.Fatal(err)
			}
			goldenFile(t, filepath.Join("extract", name+".golden"), out.Bytes())
		})
	}
	if _, err := Extract(cases["none"]); !errors.Is(err, ErrNoReport) {
		t.Errorf("no markers: got %v, want ErrNoReport", err)
	}
}

// Frame and Extract are inverse for any report bytes.
func TestFrameRoundTrip(t *testing.T) {
	_, b := readReport(t, "report.json")
	for n := 0; n < 70; n += 13 { // line-length edge cases of base64
		in := append(bytes.Repeat([]byte(" "), n), b...)
		var s strings.Builder
		if err := Frame(&s, in); err != nil {
			t.Fatal(err)
		}
		if _, err := Extract([]byte(s.String())); err != nil {
			t.Errorf("padding %d: %v", n, err)
		}
	}
}
