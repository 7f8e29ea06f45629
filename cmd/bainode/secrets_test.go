package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoSecretOnStderr plants a password hash and a registry token in a site
// and runs failing and succeeding commands: neither may reach stderr or stdout.
func TestNoSecretOnStderr(t *testing.T) {
	const token = "tok-PLANTED-7f3a9c"
	dir := t.TempDir()
	good := "version: 1\noperator:\n  password_hash: \"" + plantedHash + "\"\n" +
		"images:\n  registries:\n    - registry: registry.example.com\n      username: bot\n      token: " + token + "\n" +
		"nodes:\n  - hostname: a\n    ip: 10.0.0.5\n"
	site := filepath.Join(dir, "site.yaml")
	os.WriteFile(site, []byte(good), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(good, "10.0.0.5", "10.0.0.300", 1)+"extra: 1\n"), 0o644)
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)

	for i, args := range [][]string{
		{"validate", "--config", bad},
		{"render", "--config", bad, "-o", filepath.Join(dir, "o1")},
		{"seed", "--config", bad, "-o", filepath.Join(dir, "o2")},
		{"seed", "--config", site, "-o", blocker}, // cannot write
		{"render", "--config", site, "-o", filepath.Join(blocker, "x")},
		{"seed", "--config", site, "-o", filepath.Join(dir, "o3")}, // succeeds
		{"validate", "--config", site},
	} {
		out, errs, code := bainode(t, "", args...)
		for _, secret := range []string{plantedHash, token, "jDFqomxRvnMq3wcL"} {
			if strings.Contains(errs, secret) || strings.Contains(out, secret) {
				t.Errorf("%v (exit %d) printed a secret:\n%s%s", args, code, out, errs)
			}
		}
		if fail := i < 5; fail != (code != 0) {
			t.Errorf("%v: exit %d, want failure %v", args, code, fail)
		}
		if code != 0 && errs == "" {
			t.Errorf("%v: exit %d with nothing on stderr", args, code)
		}
	}
}
