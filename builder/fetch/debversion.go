package fetch

import (
	"strconv"
	"strings"
)

// CompareDebVersions orders Debian package versions as dpkg does
// ([epoch:]upstream[-revision], "~" sorting before everything, even the end
// of the string). It returns -1, 0 or 1.
func CompareDebVersions(a, b string) int {
	ea, ua, ra := splitDebVersion(a)
	eb, ub, rb := splitDebVersion(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := compareDebPart(ua, ub); c != 0 {
		return c
	}
	return compareDebPart(ra, rb)
}

func splitDebVersion(v string) (epoch int, upstream, revision string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, _ = strconv.Atoi(v[:i])
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// compareDebPart is dpkg's verrevcmp: alternate non-digit runs (compared by
// order()) and digit runs (compared numerically).
func compareDebPart(a, b string) int {
	for a != "" || b != "" {
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			var ca, cb int
			if a != "" {
				ca = debOrder(a[0])
			}
			if b != "" {
				cb = debOrder(b[0])
			}
			if ca != cb {
				return sign(ca - cb)
			}
			if a != "" {
				a = a[1:]
			}
			if b != "" {
				b = b[1:]
			}
		}
		a = strings.TrimLeft(a, "0")
		b = strings.TrimLeft(b, "0")
		var da, db int
		for da < len(a) && isDigit(a[da]) {
			da++
		}
		for db < len(b) && isDigit(b[db]) {
			db++
		}
		if da != db { // no leading zeros left: the longer number is larger
			return sign(da - db)
		}
		if c := strings.Compare(a[:da], b[:db]); c != 0 {
			return c
		}
		a, b = a[da:], b[db:]
	}
	return 0
}

func debOrder(c byte) int {
	switch {
	case c == '~':
		return -1
	case isDigit(c):
		return 0
	case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		return int(c)
	default:
		return int(c) + 256
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// versionSatisfies reports whether version v meets "op want" (op one of
// << <= = >= >>, and the obsolete < and > meaning <= and >=).
func versionSatisfies(v, op, want string) bool {
	if op == "" {
		return true
	}
	c := CompareDebVersions(v, want)
	switch op {
	case "<<":
		return c < 0
	case "<=", "<":
		return c <= 0
	case "=":
		return c == 0
	case ">=", ">":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}
