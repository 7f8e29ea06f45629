package render

import (
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// One case per injection class, with the exact bytes the encoder writes.
func TestYAMLStr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bai", `"bai"`},
		{"no", `"no"`}, {"on", `"on"`}, {"null", `"null"`}, {"~", `"~"`},
		{"012", `"012"`}, {"0x1f", `"0x1f"`}, {"1.50", `"1.50"`},
		{"a\nb", `"a\nb"`},
		{"a\rb", `"a\rb"`},
		{"a\u0085b", `"a\x85b"`},
		{"a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"a\x00b\x1bc\x7fd", `"a\x00b\x1bc\x7fd"`},
		{"a\u009bb", `"a\x9bb"`},
		{"\ufeffa\ufffe", `"\ufeffa\ufffe"`},
		{`q"b\s`, `"q\"b\\s"`},
		{"\t", `"\t"`},
		{"---\n...", `"---\n..."`},
		{"é😀", `"\xe9\U0001f600"`},
		{"# c: {x}", `"# c: {x}"`},
	} {
		got, err := yamlStr(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("yamlStr(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := yamlStr("a\xffb"); err == nil || err.Error() != "a value is not valid UTF-8 (byte 1)" {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func TestYAMLText(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"", `""`},
		{"a\n", `"a\n"`},
		{"a\nb\n", "\"a\\n\\\n  b\\n\""},
		{" lead\n  two\n", "\"\\x20lead\\n\\\n  \\x20 two\\n\""},
		{"x\u2028y\rz\n", "\"x\\u2028y\\rz\\n\""},
		{"no\n\n", "\"no\\n\\\n  \\n\""},
	} {
		got, err := yamlText(2, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("yamlText(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestShStr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$(id)`x`\n\r\u2028", "'$(id)`x`\n\r\u2028'"},
	} {
		got, err := shStr(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("shStr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := shStr("a\x00b"); err == nil || err.Error() != `"a\x00b" holds a NUL byte, which no shell variable can hold` {
		t.Errorf("NUL: %v", err)
	}
}

func TestLineFields(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1", ""},
		{"a b", `"a b" cannot be a field of a whitespace-separated file (byte 0x20)`},
		{"a#b", `"a#b" cannot be a field of a whitespace-separated file (byte 0x23)`},
		{"a\u2028", `"a\u2028" cannot be a field of a whitespace-separated file (byte 0xe2)`},
		{"", "empty field in a whitespace-separated file"},
	} {
		_, err := word(tc.in)
		if got := errText(err); got != tc.want {
			t.Errorf("word(%q): %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"agent node é", ""},
		{"a\rb", `"a\rb" holds control character U+000D, which would end its line`},
		{"a\u0085b", `"a\u0085b" holds control character U+0085, which would end its line`},
		{"a\u2029b", `"a\u2029b" holds control character U+2029, which would end its line`},
	} {
		_, err := lineText(tc.in)
		if got := errText(err); got != tc.want {
			t.Errorf("lineText(%q): %q, want %q", tc.in, got, tc.want)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzEncoders: whatever the string, the YAML encoders write one line of
// printable ASCII (text: one per file line) that yaml.v3 reads back as the
// same string, and sh never leaves its quotes. `make fuzz` runs it.
func FuzzEncoders(f *testing.F) {
	for _, s := range []string{"", "no", "a\nb", "\r\u0085\u2028\u2029", "\x00\x7f\u009b", `'"\`, " lead\n\ttab\n", "---\n...\n", "é😀\ufeff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := yamlStr(s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("yamlStr(%q) accepted invalid UTF-8", s)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(q); i++ {
			if q[i] < 0x20 || q[i] > 0x7e {
				t.Fatalf("yamlStr(%q) = %q: byte %#x", s, q, q[i])
			}
		}
		var got struct{ K, T string }
		txt, err := yamlText(2, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal([]byte("k: "+q+"\nt: "+txt+"\n"), &got); err != nil || got.K != s || got.T != s {
			t.Fatalf("%q: read back %q, %q, %v\n%s\n%s", s, got.K, got.T, err, q, txt)
		}
		sh, err := shStr(s)
		if strings.IndexByte(s, 0) >= 0 {
			if err == nil {
				t.Fatal("sh accepted NUL")
			}
			return
		}
		if inner := sh[1 : len(sh)-1]; strings.Count(strings.ReplaceAll(inner, `'\''`, ""), "'") != 0 {
			t.Fatalf("sh(%q) = %s leaves its quotes", s, sh)
		}
	})
}
