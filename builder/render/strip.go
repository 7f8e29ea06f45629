package render

import (
	"bytes"
	"regexp"
)

// heredoc finds a here-document's delimiter: <<WORD, <<-WORD, <<'WORD' or
// <<"WORD" (not the <<< here-string).
var heredoc = regexp.MustCompile(`(?:^|[^<])<<(-?)\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

// stripShell drops a bash script's full-line comments and blank lines,
// keeping the #! line and every here-document as is. It makes user-data
// smaller; TestStripShell checks that bash parses the result to the same
// commands as the original.
func stripShell(src []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(src))
	lines := bytes.SplitAfter(src, []byte("\n"))
	var until []byte // the delimiter ending the here-document we are in
	var tabs bool
	for i, l := range lines {
		body := bytes.TrimRight(l, "\n")
		if until != nil {
			out.Write(l)
			end := body
			if tabs {
				end = bytes.TrimLeft(end, "\t")
			}
			if bytes.Equal(end, until) {
				until = nil
			}
			continue
		}
		t := bytes.TrimLeft(body, " \t")
		// shellcheck directives stay, so the stripped script lints the same.
		if i > 0 && (len(t) == 0 || t[0] == '#' && !bytes.HasPrefix(t, []byte("# shellcheck "))) {
			continue
		}
		out.Write(l)
		if m := heredoc.FindSubmatch(body); m != nil && !bytes.HasPrefix(t, []byte("#")) {
			until, tabs = m[2], len(m[1]) > 0
		}
	}
	return out.Bytes()
}
