package spec

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	reHostname  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	reUser      = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	reSHA512    = regexp.MustCompile(`^\$6\$(rounds=[0-9]+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$`)
	reSSHKey    = regexp.MustCompile(`^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$`)
	reSysctl    = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$`)
	rePyVer     = regexp.MustCompile(`^3\.[0-9]+\.[0-9]+$`)
	reRelease   = regexp.MustCompile(`^[0-9]{8}$`)
	reName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	reDriver    = regexp.MustCompile(`^[0-9]{3}$`)
	reCUDA      = regexp.MustCompile(`^[0-9]+-[0-9]+$`)
	reHex64     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	reImage     = regexp.MustCompile(`^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?(@sha256:[0-9a-f]{64}|:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$`)
	reAptPin    = regexp.MustCompile(`^[A-Za-z0-9.+:~_-]+$`)
	reShell     = regexp.MustCompile(`^/[A-Za-z0-9._+/-]*[A-Za-z0-9]$`)
	reExport    = regexp.MustCompile(`^/[A-Za-z0-9._/+-]*$`)
	reMountOpts = regexp.MustCompile(`^[A-Za-z0-9_.=:/+-]+(,[A-Za-z0-9_.=:/+-]+)*$`)
	reRegistry  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)
	reRegUser   = regexp.MustCompile(`^[A-Za-z0-9._@+$-]+$`)
	reLabel     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	reByPath    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:._-]*$`)
	reSerial    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 :._-]*[A-Za-z0-9]$|^[A-Za-z0-9]$`)
	reDiskSize  = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?) ?([KMGTP]i?B?|B)?$`)
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
		switch why := hostnameProblem(n.Hostname); {
		case n.Hostname == "":
			bad("hostname", "missing")
		case why != "":
			bad("hostname", "%q %s", short(n.Hostname), why)
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
			if why := hostnameProblem(a); why != "" {
				bad(fmt.Sprintf("aliases[%d]", j), "%q %s", short(a), why)
			}
		}
		if n.MAC != "" {
			hw, err := net.ParseMAC(n.MAC)
			switch {
			case err != nil || len(hw) != 6:
				bad("mac", "%q is not a MAC address (want aa:bb:cc:dd:ee:ff)", n.MAC)
			case hw[0]&1 == 1:
				bad("mac", "%s is a multicast address (the first octet is odd); a network card has a unicast MAC", hw)
			case hw.String() == "00:00:00:00:00:00":
				bad("mac", "00:00:00:00:00:00 is not a network card's MAC")
			case macs[hw.String()] != "":
				bad("mac", "%s is also %s", hw, macs[hw.String()])
			default:
				n.MAC = hw.String()
				macs[n.MAC] = p
			}
		}
		var pfx netip.Prefix
		if n.IP != "" {
			var err error
			if pfx, err = ParseIP(n.IP); err != nil {
				bad("ip", "%q %v", n.IP, err)
			} else if why := hostAddrProblem(pfx); why != "" {
				bad("ip", "%s %s", pfx.Addr(), why)
				pfx = netip.Prefix{}
			} else if other := ips[pfx.Addr().String()]; other != "" {
				bad("ip", "%s is also %s", pfx.Addr(), other)
			} else {
				ips[pfx.Addr().String()] = p
			}
		}
		if n.Gateway != "" {
			a, err := netip.ParseAddr(n.Gateway)
			switch {
			case n.IP == "":
				bad("gateway", "needs ip: a gateway only makes sense with a static address")
			case err != nil || !a.Is4():
				bad("gateway", "%q is not an IPv4 address", n.Gateway)
			case !pfx.IsValid():
			case !pfx.Masked().Contains(a):
				bad("gateway", "gateway %s is not in %s, the node's subnet; the node could not reach it", a, pfx.Masked())
			case a == pfx.Addr():
				bad("gateway", "%s is the node's own address", a)
			default:
				if why := hostAddrProblem(netip.PrefixFrom(a, pfx.Bits())); why != "" {
					bad("gateway", "%s %s", a, why)
				}
			}
		} else if pfx.IsValid() {
			l.r.warn(l.at(p+".ip"), p+".ip", "no gateway: the node gets no default route (fine on an isolated network)")
		}
		for j, d := range n.DNS {
			a, err := netip.ParseAddr(d)
			switch {
			case err != nil:
				bad(fmt.Sprintf("dns[%d]", j), "%q is not an IP address", d)
			case a.IsUnspecified() || a.IsMulticast():
				bad(fmt.Sprintf("dns[%d]", j), "%s cannot be a name server", a)
			}
		}
		seen := map[string]int{}
		for j, d := range n.DNSSearch {
			f := fmt.Sprintf("dns_search[%d]", j)
			switch why := hostnameProblem(d); {
			case n.IP == "":
				bad(f, "needs ip: with DHCP the DHCP server gives the search domains")
			case why != "":
				bad(f, "%q %s", short(d), strings.Replace(why, "host name", "domain name", 1))
			default:
				if k, dup := seen[d]; dup {
					bad(f, "%q is also dns_search[%d]", d, k)
				}
				seen[d] = j
			}
		}
		if n.Interface != "" && (!reName.MatchString(n.Interface) || len(n.Interface) > 15) {
			bad("interface", "%q is not an interface name (at most 15 of letters, digits, '.', '_' and '-')", n.Interface)
		}
		if d := n.Disk; d != nil {
			if d.ByPath == "" && d.Serial == "" && d.Size == "" {
				bad("disk", "empty; set by_path, serial or size, or leave disk out to use the only disk")
			}
			if d.ByPath != "" && (!reByPath.MatchString(d.ByPath) || len(d.ByPath) > 200) {
				bad("disk.by_path", "%q is not a /dev/disk/by-path name (e.g. pci-0000:3b:00.0-nvme-1)", short(d.ByPath))
			}
			if d.Serial != "" && (!reSerial.MatchString(d.Serial) || len(d.Serial) > 128) {
				bad("disk.serial", "%q is not a disk serial (letters, digits and ._:- only)", short(d.Serial))
			}
			if d.Size != "" {
				if _, err := DiskSize(d.Size); err != nil {
					bad("disk.size", "%q %v", short(d.Size), err)
				}
			}
		}
	}
}

// hostnameProblem says why s cannot be a host name (RFC 1123), or "".
func hostnameProblem(s string) string {
	if len(s) > 253 {
		return fmt.Sprintf("is %d characters long; a host name has at most 253", len(s))
	}
	labels := strings.Split(s, ".")
	for _, lb := range labels {
		switch {
		case len(lb) > 63:
			return fmt.Sprintf("has a label of %d characters; each dot-separated part has at most 63", len(lb))
		case !reLabel.MatchString(lb):
			return "is not a valid host name (lower-case letters, digits and '-', parts separated by '.', no '-' at either end of a part)"
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "is not a valid host name: its last part is all digits, which reads as an address"
	}
	return ""
}

// hostAddrProblem says why a node cannot have the address p, or "".
func hostAddrProblem(p netip.Prefix) string {
	a := p.Addr()
	switch {
	case a.IsUnspecified():
		return "is the unspecified address"
	case a.IsLoopback():
		return "is a loopback address"
	case a.IsMulticast():
		return "is a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "is the broadcast address"
	case p.Bits() >= 31:
		return ""
	case a == p.Masked().Addr():
		return fmt.Sprintf("is the network address of %s", p.Masked())
	case a == broadcast(p):
		return fmt.Sprintf("is the broadcast address of %s", p.Masked())
	}
	return ""
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// nfsServerProblem says why s cannot be the server field of an fstab NFS
// line, or "". An IPv6 address must be bracketed: fstab reads
// [fd00::1]:/export, and a bare fd00::1:/export is ambiguous.
func nfsServerProblem(s string) string {
	switch {
	case s == "":
		return "is not a host name or address"
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
			return "is not a bracketed IPv6 address"
		}
		return ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is6() {
			return fmt.Sprintf("is an IPv6 address; write it in brackets, [%s], as fstab needs", s)
		}
		return ""
	}
	if why := hostnameProblem(s); why != "" {
		return "is not a host name or address"
	}
	return ""
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

func isIP(s string) bool { _, err := netip.ParseAddr(s); return err == nil }

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

// DiskSize reads a disk size: 960G and 1.92T are decimal (disk vendors'
// units), 894GiB binary; a bare number is bytes.
func DiskSize(s string) (int64, error) {
	m := reDiskSize.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("is not a size (want e.g. 960G, 894GiB or 1.92T)")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("is not a size: %v", err)
	}
	unit := strings.TrimSuffix(m[3], "B")
	mult := 1.0
	if unit != "" {
		i := strings.IndexByte("KMGTP", unit[0])
		base := 1000.0
		if strings.HasSuffix(unit, "i") {
			base = 1024
		}
		for range i + 1 {
			mult *= base
		}
	}
	n := v * mult
	if n < 1<<20 || n > 1<<60 {
		return 0, fmt.Errorf("is out of range for a disk")
	}
	return int64(n), nil
}
