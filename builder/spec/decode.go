package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node into a Go value strictly: unknown keys, wrong
// kinds and bad scalars are problems with their position, and decoding goes
// on so that every problem is reported. Fields not present keep their value,
// which is how defaults and the site → role → node layers work.
type decoder struct {
	r *report
	// origin records, for each field path relative to the settings root,
	// where its effective value came from (the last layer that set it).
	origin map[string]origin
	prefix string // spec path of the layer being decoded ("", "roles.agent.", "nodes[1].")
	// work counts the values decoded for the whole site, over every layer of
	// every node; nil means no limit.
	work *int
}

type origin struct {
	path string
	pos  position
}

func posOf(n *yaml.Node) position { return position{n.Line, n.Column} }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Secret keys that must never hold a plaintext password.
var plaintextKeys = map[string]bool{"password": true, "plain_text_passwd": true, "passwd": true}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if d.work != nil {
		if *d.work++; *d.work > maxWork {
			if *d.work == maxWork+1 {
				d.r.problems = nil // this one problem replaces the rest: they are artefacts of stopping
				d.r.add(posOf(n), d.prefix+path, "the site is too large to check: its nodes' settings hold more than %d values in all; move settings from the top of the file to the roles or nodes that need them", maxWork)
			}
			return
		}
	}
	if d.origin != nil && path != "" {
		d.origin[path] = origin{d.prefix + path, posOf(n)}
	}
	full := d.prefix + path
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.r.add(posOf(n), full, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.r.add(posOf(n), full, "want a mapping, got %s", describe(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		free := v.Type().Elem().Kind() == reflect.Interface
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if free && secretKey(k.Value) {
				d.r.add(posOf(k), d.prefix+join(path, k.Value), secretMsg)
				continue
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, join(path, k.Value))
			v.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
	case reflect.Interface:
		x, ok := d.jsonValue(n, full)
		if !ok {
			return
		}
		v.Set(reflect.ValueOf(&x).Elem())
	default:
		d.decodeScalar(n, v, full)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	full := d.prefix + path
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return // "docker:" with nothing under it keeps the defaults
		}
		d.r.add(posOf(n), full, "want a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(full, k.Value)
		if seen[k.Value] {
			d.r.add(posOf(k), kp, "key given twice")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok && full == "" && strings.HasPrefix(k.Value, "x-") {
			continue // an extension key at the top: a place for &anchors
		}
		if !ok {
			if k.Value == "<<" {
				d.r.add(posOf(k), kp, "a quoted \"<<\" is an ordinary key; write << without quotes to merge a mapping")
				continue
			}
			if plaintextKeys[k.Value] {
				d.r.add(posOf(k), kp, "plaintext passwords are not accepted; run 'bainode passwd' and put the hash in password_hash")
				continue
			}
			d.r.add(posOf(k), kp, "unknown key%s", suggest(k.Value, fields))
			continue
		}
		d.decode(val, v.FieldByIndex(idx), join(path, k.Value))
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, full string) {
	if n.Kind != yaml.ScalarNode {
		d.r.add(posOf(n), full, "want a %s, got %s", kindName(v.Kind()), describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" {
			d.r.add(posOf(n), full, "want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.r.add(posOf(n), full, "want true or false, got %q", n.Value)
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Tag != "!!int" || err != nil {
			d.r.add(posOf(n), full, "want a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	default:
		d.r.add(posOf(n), full, "cannot decode into %s", v.Type())
	}
}

// fieldsOf maps yaml keys to field indexes, following ",inline" fields.
func fieldsOf(t reflect.Type) map[string][]int {
	m := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" {
			for k, idx := range fieldsOf(f.Type) {
				m[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = []int{i}
	}
	return m
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!null":
		return "nothing"
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	}
	return fmt.Sprintf("%q", n.Value)
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "whole number"
	}
	return k.String()
}

// suggest names the closest known key, for typos like "sudo_nopaswd".
func suggest(key string, fields map[string][]int) string {
	best, bestD := "", 3
	for k := range fields {
		if d := distance(key, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	// A key with nothing in common with any known key ("<<" and "ip") gets
	// no suggestion.
	if best == "" || bestD >= len(key) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev = cur
	}
	return prev[len(b)]
}

// jsonValue reads a free-form value (docker.daemon_json) as what JSON can
// hold: objects with string keys, arrays, strings, finite numbers, booleans
// and null. A value JSON cannot hold is a problem here, with its position,
// not a failure at render time.
func (d *decoder) jsonValue(n *yaml.Node, path string) (any, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := join(path, k.Value)
			if secretKey(k.Value) {
				d.r.add(posOf(k), kp, secretMsg)
				ok = false
				continue
			}
			x, good := d.jsonValue(v, kp)
			ok = ok && good
			m[k.Value] = x
		}
		return m, ok
	case yaml.SequenceNode:
		a := make([]any, len(n.Content))
		ok := true
		for i, c := range n.Content {
			x, good := d.jsonValue(c, fmt.Sprintf("%s[%d]", path, i))
			ok = ok && good
			a[i] = x
		}
		return a, ok
	case yaml.ScalarNode:
	default:
		d.r.add(posOf(n), path, "want a JSON value, got %s", describe(n))
		return nil, false
	}
	var x any
	switch n.Tag {
	case "!!str", "!!null", "!!bool", "!!int", "!!float":
		if err := n.Decode(&x); err != nil {
			d.r.add(posOf(n), path, "%q cannot be read: %v", n.Value, err)
			return nil, false
		}
	default:
		d.r.add(posOf(n), path, "%s values have no JSON form; quote the value to make it a string", n.Tag)
		return nil, false
	}
	if f, isF := x.(float64); isF && (math.IsNaN(f) || math.IsInf(f, 0)) {
		d.r.add(posOf(n), path, "%q has no JSON form; JSON numbers are finite", n.Value)
		return nil, false
	}
	if _, err := json.Marshal(x); err != nil {
		d.r.add(posOf(n), path, "%q has no JSON form: %v", n.Value, err)
		return nil, false
	}
	return x, true
}

const secretMsg = "looks like a secret; daemon.json is readable by every user of the node. Registry logins belong in images.registries, which bainode writes to a 0600 file"

// secretKey tells daemon.json keys that name a credential. Docker's own
// keys never do ("authorization-plugins" names plugins, not a secret).
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "secret", "token", "credential", "apikey", "api_key", "api-key", "private_key", "private-key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return k == "auth" || k == "auths" || k == "authorization" || k == "credsstore" || k == "credhelpers"
}
