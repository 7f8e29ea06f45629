package inventory

import (
	"errors"
	"fmt"
	"strings"
)

// NormalizeMAC returns a 48-bit MAC in lower-case colon form. It accepts
// aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff and aabbccddeeff,
// the notations firmware, switches and iPXE print.
func NormalizeMAC(s string) (string, error) {
	var hex string
	switch len(s) {
	case 17: // aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff
		sep := s[2]
		if sep != ':' && sep != '-' {
			return "", fmt.Errorf("invalid mac %q", s)
		}
		for i := 2; i < 17; i += 3 {
			if s[i] != sep {
				return "", fmt.Errorf("invalid mac %q", s)
			}
			hex += s[i-2 : i]
		}
		hex += s[15:17]
	case 14: // aabb.ccdd.eeff
		if s[4] != '.' || s[9] != '.' {
			return "", fmt.Errorf("invalid mac %q", s)
		}
		hex = s[0:4] + s[5:9] + s[10:14]
	case 12:
		hex = s
	default:
		return "", fmt.Errorf("invalid mac %q", s)
	}
	var b strings.Builder
	b.Grow(17)
	for i := 0; i < 12; i++ {
		c := hex[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", fmt.Errorf("invalid mac %q", s)
		}
		if i > 0 && i%2 == 0 {
			b.WriteByte(':')
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// NormalizeMACs normalizes every MAC, rejecting duplicates.
func NormalizeMACs(macs []string) ([]string, error) {
	out := make([]string, 0, len(macs))
	seen := make(map[string]bool, len(macs))
	for _, m := range macs {
		n, err := NormalizeMAC(m)
		if err != nil {
			return nil, err
		}
		if seen[n] {
			return nil, fmt.Errorf("duplicate mac %s", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

// CheckHostname accepts lower-case RFC 1123 host names. Requiring lower
// case keeps one spelling per node, so lookups need no folding.
func CheckHostname(s string) error {
	if s == "" || len(s) > 253 {
		return errors.New("hostname must be 1 to 253 characters")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("invalid hostname %q: labels must be 1 to 63 characters", s)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("invalid hostname %q: labels cannot start or end with '-'", s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("invalid hostname %q: only a-z, 0-9, '-' and '.' are allowed", s)
			}
		}
	}
	return nil
}
