package render_test

import (
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/spec"
)

// One regression per injection class of issue 9. The value is set after
// validation, so render is checked on its own (defence in depth): the value
// lands as one exact escaped line, or render refuses it with an exact
// error. It never becomes a YAML key, a shell command or a line of its own.
func TestInjectionClasses(t *testing.T) {
	r := renderer(t)
	const site = `version: 1
target: ubuntu-22.04
docker: {daemon_json: {log-driver: json-file}}
hosts: {entries: [{ip: 10.0.0.1, names: [n1], comment: c}]}
storage: {nfs: [{name: d, server: 10.0.0.5, export: /e, options: rw}]}
images: {registries: [{registry: cr.example.com, username: u, token: t}]}
nodes: [{hostname: n1, interface: ens3}]
`
	for _, tc := range []struct {
		name string
		set  func(*spec.Site, *spec.Settings, *spec.Node)
		line string // exact line expected in user-data
		err  string // or the exact error
	}{
		{"site name never reaches a comment",
			func(s *spec.Site, _ *spec.Settings, _ *spec.Node) { s.Name = "x\nchpasswd: {expire: false}" }, "", ""},
		{"operator.shell with a newline",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Operator.Shell = "/bin/sh\nssh_pwauth: true" },
			`    shell: "/bin/sh\nssh_pwauth: true"`, ""},
		{"operator.shell with NEL, LS, PS and CR",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) {
				c.Operator.Shell = "/bin/sh\u0085x\u2028y\u2029z\r"
			},
			`    shell: "/bin/sh\x85x\u2028y\u2029z\r"`, ""},
		{"operator.shell in verify.env",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Operator.Shell = "/bin/it's\u2028" },
			`      BAI_SHELL='/bin/it'\\''s\u2028'\n\`, ""},
		{"NUL in an env value",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Operator.Shell = "/bin/sh\x00" },
			"", `n1: verify.env: "/bin/sh\x00" holds a NUL byte, which no shell variable can hold`},
		{"YAML 1.1 booleans and numbers stay strings",
			func(_ *spec.Site, c *spec.Settings, n *spec.Node) { n.Hostname = "012"; c.Operator.Name = "no" },
			`hostname: "012"`, ""},
		{"operator name on",
			func(_ *spec.Site, c *spec.Settings, n *spec.Node) { c.Operator.Name = "on" },
			`    primary_group: "on"`, ""},
		{"interface name null",
			func(_ *spec.Site, _ *spec.Settings, n *spec.Node) { n.Interface = "null" },
			"", ""},
		{"sysctl value with a line separator",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) {
				c.Sysctl.Set = map[string]string{"net.core.somaxconn": "4096\u2028kernel.modprobe = /tmp/x"}
			},
			"", `n1: sysctl.conf: "4096\u2028kernel.modprobe = /tmp/x" holds control character U+2028, which would end its line`},
		{"hosts comment with CR",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Hosts.Entries[0].Comment = "a\rb" },
			"", `n1: hosts.block: "a\rb" holds control character U+000D, which would end its line`},
		{"hosts comment with NEL",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Hosts.Entries[0].Comment = "a\u0085b" },
			"", `n1: hosts.block: "a\u0085b" holds control character U+0085, which would end its line`},
		{"docker.repository with a paragraph separator",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) {
				c.Docker.Repository = "https://x.example/\u2029bootcmd: [reboot]"
			},
			`      DOCKER_REPO='https://x.example/\u2029bootcmd: [reboot]/ubuntu'\n\`, ""},
		{"python.mirror with CR LF and a document marker",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) {
				c.Python.Enabled = true
				c.Python.Mirror = "https://x.example/p\r\n---\n"
			},
			`      PYTHON_SUMS_URL='https://x.example/p\r\n\` + "\n" + `      ---\n\`, ""},
		{"daemon_json strings",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) {
				c.Docker.DaemonJSON = map[string]any{"k\u2028": "v\u0085\x00"}
			},
			`      \x20 \"k\\u2028\": \"v\x85\\u0000\"\n\`, ""},
		{"registry token with a space",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Images.Registries[0].Token = "a b" },
			"", "images.registries[0]: a registry, user name or token is empty or holds a blank or a control character"},
		{"NFS options with NEL",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Storage.NFS[0].Options = "rw\u0085x" },
			"", `n1: fstab: "rw\u0085x" cannot be a field of a whitespace-separated file (byte 0xc2)`},
		{"NFS export with a space",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Storage.NFS[0].Export = "/e x" },
			"", `n1: fstab: "10.0.0.5:/e x" cannot be a field of a whitespace-separated file (byte 0x20)`},
		{"operator name in limits.conf",
			func(_ *spec.Site, c *spec.Settings, _ *spec.Node) { c.Operator.Name = "a b" },
			"", `n1: limits.conf: "a b" cannot be a field of a whitespace-separated file (byte 0x20)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := spec.Parse("s.yaml", []byte(site))
			if err != nil {
				t.Fatal(err)
			}
			n := &s.Nodes[0]
			tc.set(s, &n.Settings, n)
			f, err := r.Node(s, n)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v\nwant     %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ud := string(f.UserData)
			if tc.line != "" && !strings.Contains(ud, "\n"+tc.line+"\n") {
				t.Errorf("user-data lacks the line %s:\n%s", tc.line, ud)
			}
			for _, l := range strings.Split(ud, "\n") {
				if strings.HasPrefix(l, "#") && strings.Contains(l, "chpasswd") || strings.HasPrefix(l, "chpasswd") || strings.HasPrefix(l, "ssh_pwauth") {
					t.Errorf("site value escaped its scalar: %q", l)
				}
			}
			c := parseUserData(t, f.UserData) // yaml.v3 must read it too
			if c.Hostname != n.Hostname || c.Users[0].Name != n.Settings.Operator.Name {
				t.Errorf("hostname %q, user %q", c.Hostname, c.Users[0].Name)
			}
		})
	}
}
