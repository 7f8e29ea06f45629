package verify

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// cellMax bounds the expected and actual columns so the table stays
// readable; the detail column is last and left whole.
const cellMax = 60

// WriteTable writes r as aligned columns (STATUS, CHECK, EXPECTED, ACTUAL,
// DETAIL) in report order, then a summary line.
func WriteTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tEXPECTED\tACTUAL\tDETAIL")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n",
			strings.ToUpper(c.Status), cell(c.ID, 0), cell(c.Expected, cellMax),
			cell(c.Actual, cellMax), cell(c.Detail, 0))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := r.Count()
	verdict := "ok"
	if r.Failed() {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "%s: %s: %d passed, %d failed, %d skipped\n", cell(r.Host, 0), verdict, s.Pass, s.Fail, s.Skip)
	return err
}

// cell makes s safe for one tabwriter cell: no tabs or newlines (they would
// break the columns), "-" for empty, and at most max runes when max > 0.
func cell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r < ' ' {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" {
		return "-"
	}
	if rs := []rune(s); max > 0 && len(rs) > max {
		return string(rs[:max-3]) + "..."
	}
	return s
}
