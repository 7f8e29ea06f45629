package spec

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Limits on what the loader reads. A site file is written by hand: these are
// far above any real site and far below what would hurt the machine.
const (
	// MaxFileSize is the largest site file read, in bytes.
	MaxFileSize = 1 << 20
	// MaxValues is how many YAML values the file may hold once every alias
	// and merge key is expanded (the alias budget: billion laughs stops here).
	MaxValues = 200_000
	// MaxDepth is how deeply values may nest (site → nodes → [0] → docker →
	// daemon_json → ...). Real daemon.json files nest three or four levels.
	MaxDepth = 32
	// maxWork is how many values the per-node decoding may visit in all:
	// settings at the top are decoded again for every node. Only values
	// written in the file count, so a site of 1,000 nodes uses a tenth of it.
	maxWork = 250_000
)

// checkBytes refuses what is not a UTF-8 text file, with the position of the
// first bad byte. It returns false when parsing should not go on.
func checkBytes(r *report, data []byte) bool {
	if len(data) > MaxFileSize {
		r.add(position{1, 1}, "", "the file is %d bytes; a site file may be at most %d", len(data), MaxFileSize)
		return false
	}
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}), bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		r.add(position{1, 1}, "", "the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8")
		return false
	case bytes.HasPrefix(data, []byte{0, 0, 0xfe, 0xff}):
		r.add(position{1, 1}, "", "the file is UTF-32; save it as UTF-8")
		return false
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		c, size := utf8.DecodeRune(data[i:])
		switch {
		case c == utf8.RuneError && size <= 1:
			r.add(position{line, col}, "", "byte 0x%02x is not UTF-8; save the file as UTF-8", data[i])
			return false
		case c == 0:
			r.add(position{line, col}, "", "a NUL byte; a site file is text")
			return false
		case c == '\n':
			line, col = line+1, 0
		}
		i += size
		col++
	}
	return true
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchor    = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
	yamlNoLine    = regexp.MustCompile(`^yaml: (.*)$`)
	mappingValues = regexp.MustCompile(`:( |$)`)
)

// yamlError turns a yaml.v3 syntax error into a problem with a line and a
// column. yaml.v3 reports only the line where the enclosing block starts, so
// the problem line is found by parsing growing prefixes of the file until the
// same error appears, and the column from what the message names.
func yamlError(r *report, data []byte, err error) {
	msg := err.Error()
	lines := strings.SplitAfter(string(data), "\n")
	at := position{1, 1}
	text := strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		text = m[2]
		at = position{n, 1}
		// The context line is at or before the problem.
		budget := 16 * MaxFileSize
		for k := n; k <= len(lines) && k < n+200 && budget > 0; k++ {
			prefix := strings.Join(lines[:k], "")
			budget -= len(prefix)
			var x yaml.Node
			if perr := yaml.Unmarshal([]byte(prefix), &x); perr != nil && perr.Error() == msg {
				at.line = k
				break
			}
		}
	} else if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		text = fmt.Sprintf("*%s refers to no anchor &%s written before it", m[1], m[1])
		at = find(lines, 1, "*"+m[1])
	} else if m := yamlNoLine.FindStringSubmatch(msg); m != nil {
		text = m[1]
	}
	if at.line > len(lines) {
		at.line = max(len(lines), 1)
	}
	line := ""
	if at.line >= 1 && at.line <= len(lines) {
		line = strings.TrimRight(lines[at.line-1], "\r\n")
	}
	// A tab anywhere in the leading blanks of the lines around the error is
	// almost always the cause: YAML indents with spaces only.
	if tab := findTab(lines, max(at.line-1, 1)); tab.line != 0 && tab.line <= at.line+1 {
		r.add(tab, "", "not valid YAML: a tab in the indentation; YAML indents with spaces only (%s)", text)
		return
	}
	switch {
	case text == "mapping values are not allowed in this context":
		// The second "key: " on a line, or a "key:" on a line that continues a value.
		locs := mappingValues.FindAllStringIndex(line, -1)
		if len(locs) > 1 {
			at.col = runeCol(line, locs[1][0])
		} else if len(locs) == 1 {
			at.col = runeCol(line, locs[0][0])
		}
		text += " (a value holding \": \" needs quotes, or the line is indented too far)"
	case text == "found character that cannot start any token":
		if i := strings.IndexFunc(strings.TrimLeft(line, " "), func(c rune) bool { return strings.ContainsRune("@`\t%", c) }); i >= 0 {
			at.col = len(line) - len(strings.TrimLeft(line, " ")) + i + 1
		}
	case text == "found unexpected end of stream":
		if i := strings.IndexAny(line, "\"'"); i >= 0 {
			at.col = runeCol(line, i)
			text = "a quoted string that starts here is never closed"
		}
	case text == "did not find expected ',' or ']'", text == "did not find expected ',' or '}'":
		open := "["
		if strings.HasSuffix(text, "'}'") {
			open = "{"
		}
		if i := strings.Index(line, open); i >= 0 {
			at.col = runeCol(line, i)
			text += fmt.Sprintf(" (the %s that starts here is not closed, or a value in it needs quotes)", open)
		}
	case text == "found unknown escape character":
		if i := strings.Index(line, "\\"); i >= 0 {
			at.col = runeCol(line, i)
			text += " (in double quotes a backslash starts an escape; use single quotes for a literal \\)"
		}
	}
	if at.col == 1 && line != "" {
		at.col = len(line) - len(strings.TrimLeft(line, " ")) + 1
	}
	r.add(at, "", "not valid YAML: %s", text)
}

// findTab returns the first tab in the leading blanks of a line from line on.
func findTab(lines []string, from int) position {
	for i := from - 1; i < len(lines); i++ {
		for j, c := range lines[i] {
			if c == '\t' {
				return position{i + 1, j + 1}
			}
			if c != ' ' {
				break
			}
		}
	}
	return position{}
}

func find(lines []string, from int, s string) position {
	for i := from - 1; i < len(lines); i++ {
		if j := strings.Index(lines[i], s); j >= 0 {
			return position{i + 1, runeCol(lines[i], j)}
		}
	}
	return position{1, 1}
}

// runeCol is the 1-based column, in characters, of byte offset i.
func runeCol(line string, i int) int { return utf8.RuneCountInString(line[:i]) + 1 }

// badRune names the first character of s that must not appear in a site
// value: C0 and C1 controls, DEL and the Unicode line and paragraph
// separators. YAML, shell and cloud-init read each of them as a line break or
// worse, so a value holding one could end the line it is written into.
func badRune(s string) (rune, bool) {
	for _, c := range s {
		if c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 {
			return c, true
		}
	}
	return 0, false
}

func runeName(c rune) string {
	switch c {
	case '\n':
		return "a newline (\\n)"
	case '\r':
		return "a carriage return (\\r)"
	case '\t':
		return "a tab (\\t)"
	case 0:
		return "a NUL"
	case 0x85:
		return "a next-line character (U+0085)"
	case 0x2028:
		return "a line separator (U+2028)"
	case 0x2029:
		return "a paragraph separator (U+2029)"
	case 0x7f:
		return "a DEL (U+007F)"
	}
	return fmt.Sprintf("a control character (U+%04X)", c)
}
