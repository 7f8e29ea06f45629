package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Run is one report and the name it goes by: the host, or host.bootN when
// smoke checks several boots.
type Run struct {
	Name   string
	Report Report
}

// Format is one way to print reports.
type Format struct {
	Name  string
	Usage string
	Write func(w io.Writer, runs []Run) error
}

// Formats are the report formats: the one table that bainode verify and
// bainode smoke print from. docs/cloud-init.md lists them; a test checks.
var Formats = []Format{
	{"table", "aligned columns (status, check, expected, actual, detail), then a summary line per report", writeTables},
	{"json", "the verifier's JSON report; an array of them for several boots", writeJSON},
	{"junit", "JUnit XML: one testsuite per report in one testsuites document, one testcase per check", WriteJUnitRuns},
	{"lines", "one PASS, FAIL or SKIP line per check, with expected and actual for those that did not pass, then a summary line; prefixed by boot N: for several boots", writeLines},
}

// FormatNamed is the format called name.
func FormatNamed(name string) (Format, error) {
	var names []string
	for _, f := range Formats {
		if f.Name == name {
			return f, nil
		}
		names = append(names, f.Name)
	}
	return Format{}, fmt.Errorf("no report format %q; want one of %s", name, strings.Join(names, ", "))
}

func writeTables(w io.Writer, runs []Run) error {
	for i, r := range runs {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if err := WriteTable(w, r.Report); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(w io.Writer, runs []Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(runs) == 1 {
		return enc.Encode(runs[0].Report)
	}
	reps := make([]Report, len(runs))
	for i, r := range runs {
		reps[i] = r.Report
	}
	return enc.Encode(reps)
}

var statusWord = map[string]string{StatusPass: "PASS", StatusFail: "FAIL", StatusSkip: "SKIP"}

func writeLines(w io.Writer, runs []Run) error {
	var b strings.Builder
	for i, r := range runs {
		prefix := ""
		if len(runs) > 1 {
			prefix = fmt.Sprintf("boot %d: ", i+1)
		}
		for _, ch := range r.Report.Checks {
			fmt.Fprintf(&b, "%s%-4s %s", prefix, statusWord[ch.Status], ch.ID)
			if ch.Status != StatusPass {
				fmt.Fprintf(&b, "  (expected %q, got %q) %s", ch.Expected, ch.Actual, ch.Detail)
			}
			b.WriteString("\n")
		}
		s := r.Report.Count()
		fmt.Fprintf(&b, "%s%d passed, %d failed, %d skipped\n", prefix, s.Pass, s.Fail, s.Skip)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
