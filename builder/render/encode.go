package render

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// One encoder per destination syntax. Every site value reaches a rendered
// file through one of these; each returns an error rather than write a
// value it cannot represent, so render never exits 0 with a broken file.

// yamlStr is a YAML double-quoted scalar in pure printable ASCII: quotes,
// backslashes, every control and line-break character (\r, U+0085, U+2028,
// U+2029, C0, C1, DEL) and everything non-ASCII are escaped. YAML 1.1
// (PyYAML, cloud-init) and 1.2 read it back as the same string, never as a
// bool, null or number.
func yamlStr(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	if err := yamlEscape(&b, s, false); err != nil {
		return "", err
	}
	b.WriteByte('"')
	return b.String(), nil
}

// yamlText is yamlStr for a multi-line file: the scalar is written one
// source line per content line, each ending in an escaped line break, so
// goldens stay readable. Continuation lines are indented by indent spaces;
// a leading space is escaped because YAML strips it there.
func yamlText(indent int, s string) (string, error) {
	if s == "" {
		return `""`, nil
	}
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	b.WriteByte('"')
	for rest := s; rest != ""; {
		line, tail, nl := strings.Cut(rest, "\n")
		if err := yamlEscape(&b, line, true); err != nil {
			return "", err
		}
		rest = tail
		if nl {
			b.WriteString(`\n`)
			if rest != "" {
				b.WriteString("\\\n" + pad)
			}
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

var errUTF8 = errors.New("is not valid UTF-8")

// EncodeError is a value that the encoder of its destination refuses.
type EncodeError struct{ Err error }

func (e *EncodeError) Error() string { return e.Err.Error() }
func (e *EncodeError) Unwrap() error { return e.Err }

// refuse wraps an encoder error so exec can report it without the
// template machinery around it.
func refuse(err error) error {
	if err == nil {
		return nil
	}
	return &EncodeError{err}
}

func yamlEscape(b *strings.Builder, s string, lineStart bool) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			// Not quoted: the value may be a secret (a password hash).
			return fmt.Errorf("a value %w (byte %d)", errUTF8, i)
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' && lineStart && i == 0:
			b.WriteString(`\x20`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
	}
	return nil
}

// shStr single-quotes a value for a file that bash sources. Every byte
// survives single quotes except NUL, which no shell variable can hold.
func shStr(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("%q holds a NUL byte, which no shell variable can hold", s)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
}

// word checks a field of a whitespace-separated file (/etc/hosts, fstab,
// limits.conf, registry-auth): printable ASCII without spaces or '#'.
// Validation already restricts these; render checks again so that no
// other caller of Node can split or comment out a line.
func word(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty field in a whitespace-separated file")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return "", fmt.Errorf("%q cannot be a field of a whitespace-separated file (byte %#02x)", s, c)
		}
	}
	return s, nil
}

// lineText checks free text that ends a line (a hosts comment, a sysctl
// value): any printable text, but no line or paragraph break and no control
// character, so it stays on its line.
func lineText(s string) (string, error) {
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			return "", fmt.Errorf("%q %w", s, errUTF8)
		}
		if r < 0x20 && r != '\t' || r >= 0x7f && r <= 0x9f || r == 0x2028 || r == 0x2029 {
			return "", fmt.Errorf("%q holds control character %U, which would end its line", s, r)
		}
	}
	return s, nil
}
