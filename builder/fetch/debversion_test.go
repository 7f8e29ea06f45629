package fetch

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// needTool fails (CI=true) or skips the test when a host program is missing.
func needTool(t testing.TB, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s not found (Debian package %s)", tool, pkg)
		}
		t.Skipf("%s not found (Debian package %s)", tool, pkg)
	}
}

// dpkgCompare asks dpkg for the order of each pair, in one shell for the
// whole batch: -1, 0, 1, or 2 where dpkg refuses a version.
func dpkgCompare(t testing.TB, pairs [][2]string) []int {
	t.Helper()
	const script = `while read -r a b; do
	dpkg --compare-versions "$a" lt "$b" 2>/dev/null; rc=$?
	if [ $rc = 0 ]; then echo -1; continue; fi
	if [ $rc != 1 ]; then echo 2; continue; fi
	if dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo 0; else echo 1; fi
done`
	var in strings.Builder
	for _, p := range pairs {
		in.WriteString(p[0] + " " + p[1] + "\n")
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dpkg --compare-versions: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != len(pairs) {
		t.Fatalf("dpkg answered %d of %d comparisons", len(f), len(pairs))
	}
	res := make([]int, len(f))
	for i, s := range f {
		res[i], _ = strconv.Atoi(s)
	}
	return res
}

// FuzzCompareDebVersions checks CompareDebVersions against dpkg itself on
// every pair of the versions in one input (whitespace-separated; the first
// 6 the parser accepts, as each pair costs up to two dpkg runs). The committed corpus holds the
// classic cases: epochs, "~" before the end, "+", leading zeros, revisions.
func FuzzCompareDebVersions(f *testing.F) {
	needTool(f, "dpkg", "dpkg")
	f.Add("1.0 1.0-0 1.0~rc1 1.0~~ 1.0~ 1.0+b1")
	f.Add("1.001 1.1 1:0.1 9.9 5:24.0.7-1~ubuntu.20.04~focal 5:20.10.24~3-0~ubuntu-focal")
	f.Add("2.31-0ubuntu9.9 2.31-0ubuntu9.10 1.0-1 1.0-1ubuntu1")
	f.Add("1.2.3a 1.2.3 1.2-3.4-5 1.2-3.4-6")
	f.Fuzz(func(t *testing.T, in string) {
		var vs []string
		for _, v := range strings.Fields(in) {
			if _, err := parseDebVersion(v); err == nil && len(vs) < 6 {
				vs = append(vs, v)
			}
		}
		var pairs [][2]string
		for i := range vs {
			for j := i + 1; j < len(vs); j++ {
				pairs = append(pairs, [2]string{vs[i], vs[j]})
			}
		}
		if len(pairs) == 0 {
			return
		}
		for i, want := range dpkgCompare(t, pairs) {
			a, b := pairs[i][0], pairs[i][1]
			if want == 2 {
				t.Errorf("version.Parse accepts what dpkg refuses: %q or %q", a, b)
				continue
			}
			if got := CompareDebVersions(a, b); got != want {
				t.Errorf("CompareDebVersions(%q, %q) = %d, dpkg says %d", a, b, got, want)
			}
			if got := CompareDebVersions(b, a); got != -want {
				t.Errorf("CompareDebVersions(%q, %q) = %d, dpkg says %d", b, a, got, -want)
			}
		}
	})
}
