package spec

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	reHostname = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	reUser     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	reSHA512   = regexp.MustCompile(`^\$6\$(rounds=[0-9]+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$`)
	reSSHKey   = regexp.MustCompile(`^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$`)
	reSysctl   = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$`)
	rePyVer    = regexp.MustCompile(`^3\.[0-9]+\.[0-9]+$`)
	reRelease  = regexp.MustCompile(`^[0-9]{8}$`)
	reName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	reDriver   = regexp.MustCompile(`^[0-9]{3}$`)
	reCUDA     = regexp.MustCompile(`^[0-9]+-[0-9]+$`)
	reHex64    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	reImage    = regexp.MustCompile(`^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?(@sha256:[0-9a-f]{64}|:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$`)
	reAptPin   = regexp.MustCompile(`^[A-Za-z0-9.+:~_-]+$`)
)

// nrOpen is the kernel's default fs.nr_open; pam_limits cannot raise nofile
// past it, and a failed setrlimit locks users out of su and ssh.
const nrOpen = 1048576

func (l *loader) checkHeader() {
	s := l.site
	switch {
	case s.Version == 0:
		l.r.add(l.at("version"), "version", "missing; this bainode reads version: %d", Version)
	case s.Version != Version:
		l.r.add(l.at("version"), "version", "%d is not supported; this bainode reads version: %d", s.Version, Version)
	}
	if s.Target == "" {
		s.Target = DefaultTarget
	} else if !slices.Contains(Targets, s.Target) {
		l.r.add(l.at("target"), "target", "%q is not a target; want one of %s", s.Target, strings.Join(Targets, ", "))
	}
	if _, err := seedFormat(s.Seed.Format); err != nil {
		l.r.add(l.at("seed.format"), "seed.format", "%v", err)
	}
	for role := range s.Roles {
		if !slices.Contains(Roles, role) {
			l.r.add(l.at("roles."+role), "roles."+role, "%q is not a role; want one of %s", role, strings.Join(Roles, ", "))
		}
	}
}

func seedFormat(f string) (string, error) {
	switch f {
	case "", "iso", "iso9660":
		return "iso", nil
	case "vfat", "fat":
		return "vfat", nil
	}
	return "", fmt.Errorf("%q is not a seed format; want iso or vfat", f)
}

func (l *loader) checkNodes() {
	if len(l.site.Nodes) == 0 {
		l.r.add(l.at("nodes"), "nodes", "at least one node is needed")
	}
	hosts := map[string]string{}
	macs := map[string]string{}
	ips := map[string]string{}
	for i := range l.site.Nodes {
		n := &l.site.Nodes[i]
		p := fmt.Sprintf("nodes[%d]", i)
		bad := func(field, format string, a ...any) {
			l.r.add(l.at(p+"."+field), p+"."+field, format, a...)
		}
		switch {
		case n.Hostname == "":
			bad("hostname", "missing")
		case !reHostname.MatchString(n.Hostname):
			bad("hostname", "%q is not a valid host name (lower-case letters, digits and '-')", n.Hostname)
		case hosts[n.Hostname] != "":
			bad("hostname", "%q is also %s", n.Hostname, hosts[n.Hostname])
		default:
			hosts[n.Hostname] = p
		}
		if !slices.Contains(Roles, n.Role) {
			bad("role", "%q is not a role; want one of %s", n.Role, strings.Join(Roles, ", "))
		}
		// An inherited target was reported at the top already.
		if _, own := l.pos[p+".target"]; own && !slices.Contains(Targets, n.Target) {
			bad("target", "%q is not a target; want one of %s", n.Target, strings.Join(Targets, ", "))
		}
		for j, a := range n.Aliases {
			if !reHostname.MatchString(a) {
				bad(fmt.Sprintf("aliases[%d]", j), "%q is not a valid host name", a)
			}
		}
		if n.MAC != "" {
			hw, err := net.ParseMAC(n.MAC)
			if err != nil || len(hw) != 6 {
				bad("mac", "%q is not a MAC address (want aa:bb:cc:dd:ee:ff)", n.MAC)
			} else if n.MAC = hw.String(); macs[n.MAC] != "" {
				bad("mac", "%s is also %s", n.MAC, macs[n.MAC])
			} else {
				macs[n.MAC] = p
			}
		}
		if n.IP != "" {
			if pfx, err := ParseIP(n.IP); err != nil {
				bad("ip", "%q %v", n.IP, err)
			} else if other := ips[pfx.Addr().String()]; other != "" {
				bad("ip", "%s is also %s", pfx.Addr(), other)
			} else {
				ips[pfx.Addr().String()] = p
			}
		}
		if n.Gateway != "" {
			if n.IP == "" {
				bad("gateway", "needs ip: a gateway only makes sense with a static address")
			} else if a, err := netip.ParseAddr(n.Gateway); err != nil || !a.Is4() {
				bad("gateway", "%q is not an IPv4 address", n.Gateway)
			}
		}
		for j, d := range n.DNS {
			if _, err := netip.ParseAddr(d); err != nil {
				bad(fmt.Sprintf("dns[%d]", j), "%q is not an IP address", d)
			}
		}
		if n.Interface != "" && !reName.MatchString(n.Interface) {
			bad("interface", "%q is not an interface name", n.Interface)
		}
	}
}

// ParseIP reads a node's ip: an IPv4 address with an optional /prefix
// (default /24).
func ParseIP(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		s += "/24"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, _, _ := strings.Cut(s, "/")
		if _, aerr := netip.ParseAddr(a); aerr != nil {
			return netip.Prefix{}, fmt.Errorf("is not an IPv4 address")
		}
		return netip.Prefix{}, fmt.Errorf("has a bad prefix length")
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("is not an IPv4 address")
	}
	if p.Bits() < 8 || p.Bits() > 32 {
		return netip.Prefix{}, fmt.Errorf("has a bad prefix length")
	}
	return p, nil
}

// checkSettings validates one node's effective settings. A problem is
// reported where the offending value was written (site, role or node); a
// problem with a default is reported at the node.
func (l *loader) checkSettings(e *effective) {
	nodePath := fmt.Sprintf("nodes[%d]", e.node)
	bad := func(field, format string, a ...any) {
		for f := field; f != ""; f = parent(f) {
			if o, ok := e.origin[f]; ok {
				l.r.add(o.pos, o.path+strings.TrimPrefix(field, f), format, a...)
				return
			}
		}
		l.r.add(l.at(nodePath), nodePath+"."+field, format, a...)
	}
	set := func(field string) bool { _, ok := e.origin[field]; return ok }
	s := &e.s

	o := s.Operator
	if !reUser.MatchString(o.Name) {
		bad("operator.name", "%q is not a valid user name", o.Name)
	}
	if o.UID < 1 || o.UID > 65533 {
		bad("operator.uid", "%d is out of range 1-65533", o.UID)
	}
	if o.GID < 1 || o.GID > 65533 {
		bad("operator.gid", "%d is out of range 1-65533", o.GID)
	}
	if !strings.HasPrefix(o.Shell, "/") {
		bad("operator.shell", "%q is not an absolute path", o.Shell)
	}
	for i, g := range o.Groups {
		if !reUser.MatchString(g) {
			bad(fmt.Sprintf("operator.groups[%d]", i), "%q is not a valid group name", g)
		}
	}
	if o.PasswordHash != "" && !reSHA512.MatchString(o.PasswordHash) {
		bad("operator.password_hash", "is not a SHA-512 crypt(3) hash ($6$...); 'bainode passwd' makes one")
	}
	if !o.SudoNopasswd && o.PasswordHash == "" && slices.Contains(o.Groups, "sudo") {
		bad("operator.sudo_nopasswd", "false needs password_hash: without either, %s cannot use sudo", o.Name)
	}
	for i, k := range o.SSHAuthorizedKeys {
		if !reSSHKey.MatchString(strings.TrimSpace(k)) {
			bad(fmt.Sprintf("operator.ssh_authorized_keys[%d]", i), "is not an OpenSSH public key line")
		}
	}

	switch s.Artifacts {
	case ArtifactsOnline, ArtifactsPayload:
	default:
		bad("artifacts", "%q is not an artifacts mode; want online or payload", s.Artifacts)
	}

	d := s.Docker
	if d.Version != "" && !reAptPin.MatchString(d.Version) {
		bad("docker.version", "%q is not an apt version", d.Version)
	}
	if d.Enabled {
		checkURL(bad, "docker.repository", d.Repository)
	}
	if d.Compose && !d.Enabled && set("docker.compose") {
		bad("docker.compose", "needs docker.enabled")
	}

	if s.Limits.NOFILE < 1024 || s.Limits.NOFILE > nrOpen {
		bad("limits.nofile", "%d is out of range 1024-%d (the kernel's fs.nr_open)", s.Limits.NOFILE, nrOpen)
	}
	if s.Limits.NPROC < 1024 || s.Limits.NPROC > 4194304 {
		bad("limits.nproc", "%d is out of range 1024-4194304", s.Limits.NPROC)
	}
	for k, v := range s.Sysctl.Set {
		if msg := checkSysctl(k, v); msg != "" {
			bad("sysctl.set."+k, "%s", msg)
		}
	}

	p := s.Python
	if p.Enabled {
		if p.BackendAI != "" {
			if set("python.version") || set("python.release") {
				bad("python.backendai", "conflicts with python.version/python.release: give one or the other")
			} else if v, ok := guide.PythonByBackendAI[p.BackendAI]; !ok {
				bad("python.backendai", "%q is not a known Backend.AI release line; want one of %s", p.BackendAI, strings.Join(BackendAIReleases(), ", "))
			} else {
				s.Python.Version, s.Python.Release = v[0], v[1]
			}
		}
		if !rePyVer.MatchString(s.Python.Version) {
			bad("python.version", "%q is not a CPython version like 3.12.4", s.Python.Version)
		}
		if !reRelease.MatchString(s.Python.Release) {
			bad("python.release", "%q is not a python-build-standalone release tag like 20240713", s.Python.Release)
		}
		if p.SHA256 != "" && !reHex64.MatchString(p.SHA256) {
			bad("python.sha256", "is not 64 lower-case hex digits")
		}
		if !reName.MatchString(p.Triple) {
			bad("python.triple", "%q is not a target triple", p.Triple)
		}
		if !reName.MatchString(p.Flavor) {
			bad("python.flavor", "%q is not an archive flavour", p.Flavor)
		}
		checkURL(bad, "python.mirror", p.Mirror)
		checkNames(bad, "python.services", p.Services)
	}

	for i, h := range s.Hosts.Entries {
		f := fmt.Sprintf("hosts.entries[%d]", i)
		if a, err := netip.ParseAddr(h.IP); err != nil || !a.Is4() {
			bad(f+".ip", "%q is not an IPv4 address", h.IP)
		}
		if len(h.Names) == 0 {
			bad(f+".names", "at least one name is needed")
		}
		for j, n := range h.Names {
			if !reHostname.MatchString(n) {
				bad(fmt.Sprintf("%s.names[%d]", f, j), "%q is not a valid host name", n)
			}
		}
		if strings.ContainsAny(h.Comment, "\n#") {
			bad(f+".comment", "must be one line without '#'")
		}
	}

	names := map[string]bool{}
	for i, n := range s.Storage.Local {
		f := fmt.Sprintf("storage.local[%d]", i)
		if !reName.MatchString(n) {
			bad(f, "%q is not a directory name under /vfroot", n)
		} else if names[n] {
			bad(f, "/vfroot/%s is given twice", n)
		}
		names[n] = true
	}
	for i, m := range s.Storage.NFS {
		f := fmt.Sprintf("storage.nfs[%d]", i)
		if !reName.MatchString(m.Name) {
			bad(f+".name", "%q is not a directory name under /vfroot", m.Name)
		} else if names[m.Name] {
			bad(f+".name", "/vfroot/%s is given twice", m.Name)
		}
		names[m.Name] = true
		if m.Server == "" || strings.ContainsAny(m.Server, " \t:/") && !isIP(m.Server) {
			bad(f+".server", "%q is not a host name or address", m.Server)
		}
		if !strings.HasPrefix(m.Export, "/") || strings.ContainsAny(m.Export, " \t") {
			bad(f+".export", "%q is not an absolute path", m.Export)
		}
		if strings.ContainsAny(m.Options, " \t") {
			bad(f+".options", "must be one comma-separated word, as in fstab")
		}
	}

	g := s.GPU
	if g.Enabled {
		if !reDriver.MatchString(g.Driver) {
			bad("gpu.driver", "%q is not an NVIDIA driver branch like 535", g.Driver)
		}
		if g.CUDA != "" && !reCUDA.MatchString(g.CUDA) {
			bad("gpu.cuda", "%q is not a CUDA version like 12-2", g.CUDA)
		}
		if g.ToolkitVersion != "" && !reAptPin.MatchString(g.ToolkitVersion) {
			bad("gpu.toolkit_version", "%q is not an apt version", g.ToolkitVersion)
		}
		if g.Toolkit && !d.Enabled {
			bad("gpu.toolkit", "needs docker.enabled: the toolkit configures Docker's runtime")
		}
	}

	for i, img := range s.Images.Pull {
		if !reImage.MatchString(img) {
			bad(fmt.Sprintf("images.pull[%d]", i), "%q is not an image reference", img)
		}
	}
	if len(s.Images.Pull) > 0 && !d.Enabled {
		bad("images.pull", "needs docker.enabled to pull images")
	}
	for i, ra := range s.Images.Registries {
		f := fmt.Sprintf("images.registries[%d]", i)
		if ra.Registry == "" || strings.ContainsAny(ra.Registry, " /\t") {
			bad(f+".registry", "%q is not a registry host", ra.Registry)
		}
		if ra.Username == "" {
			bad(f+".username", "missing")
		}
		if ra.Token == "" {
			bad(f+".token", "missing")
		}
	}
}

func isIP(s string) bool { _, err := netip.ParseAddr(s); return err == nil }

func checkURL(bad func(string, string, ...any), field, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Host == "" && u.Scheme != "file") {
		bad(field, "%q is not an http(s) URL", s)
	}
}

func checkNames(bad func(string, string, ...any), field string, names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		if !reName.MatchString(n) {
			bad(fmt.Sprintf("%s[%d]", field, i), "%q is not a valid name", n)
		} else if seen[n] {
			bad(fmt.Sprintf("%s[%d]", field, i), "%q is given twice", n)
		}
		seen[n] = true
	}
}

// checkSysctl returns why a key or value would fail under sysctl -p.
func checkSysctl(k, v string) string {
	if !reSysctl.MatchString(k) {
		return fmt.Sprintf("%q is not a sysctl key like net.core.somaxconn", k)
	}
	if strings.ContainsAny(v, "\"'") {
		return fmt.Sprintf("value %q has quotes; sysctl -p passes them to the kernel, which rejects them (write 10000 65000, not \"10000 65000\")", v)
	}
	if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "\n#=") {
		return fmt.Sprintf("value %q must be one non-empty line without '#' or '='", v)
	}
	f := strings.Fields(v)
	switch k {
	case "fs.file-max", "net.core.somaxconn", "vm.overcommit_memory":
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return fmt.Sprintf("value %q is not a whole number", v)
		}
	case "net.ipv4.ip_local_port_range":
		lo, err1 := strconv.Atoi(f[0])
		if len(f) != 2 || err1 != nil {
			return fmt.Sprintf("value %q is not two port numbers", v)
		}
		hi, err2 := strconv.Atoi(f[1])
		if err2 != nil || lo < 1 || hi > 65535 || lo >= hi {
			return fmt.Sprintf("value %q is not a port range low high within 1-65535", v)
		}
	}
	return ""
}

// fillHosts gives the hosts block its default: every node that has a static
// address, with its aliases and role.
func (l *loader) fillHosts() {
	var def []HostEntry
	for _, n := range l.site.Nodes {
		if n.IP == "" {
			continue
		}
		p, err := ParseIP(n.IP)
		if err != nil {
			continue
		}
		def = append(def, HostEntry{IP: p.Addr().String(), Names: append([]string{n.Hostname}, n.Aliases...), Comment: n.Role + " node"})
	}
	fill := func(s *Settings) {
		if s.Hosts.Enabled && len(s.Hosts.Entries) == 0 {
			s.Hosts.Entries = def
		}
	}
	fill(&l.site.Settings)
	for i := range l.site.Nodes {
		fill(&l.site.Nodes[i].Settings)
	}
}
