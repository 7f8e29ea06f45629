package spec

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// settingsCheck validates one node's effective settings, one section per
// method. A problem is reported where the offending value was written (site,
// role or node); a problem with a default is reported at the node. Sections
// that are turned off are checked all the same: their values still reach
// the node's files.
type settingsCheck struct {
	l *loader
	e *effective
	s *Settings
}

func (l *loader) checkSettings(e *effective) {
	c := &settingsCheck{l: l, e: e, s: &e.s}
	c.operator()
	c.artifacts()
	c.docker()
	c.limits()
	c.sysctl()
	c.python()
	c.hosts()
	c.storage()
	c.gpu()
	c.images()
}

// where finds the position and spec path a field's problem belongs to.
func (c *settingsCheck) where(field string) (position, string) {
	for f := field; f != ""; f = parent(f) {
		if o, ok := c.e.origin[f]; ok {
			return o.pos, o.path + strings.TrimPrefix(field, f)
		}
	}
	if c.e.node < 0 {
		return c.l.at(field), field
	}
	nodePath := fmt.Sprintf("nodes[%d]", c.e.node)
	return c.l.at(nodePath), nodePath + "." + field
}

func (c *settingsCheck) bad(field, format string, a ...any) {
	pos, path := c.where(field)
	c.l.r.add(pos, path, format, a...)
}

func (c *settingsCheck) warn(field, format string, a ...any) {
	pos, path := c.where(field)
	c.l.r.warn(pos, path, format, a...)
}

func (c *settingsCheck) set(field string) bool { _, ok := c.e.origin[field]; return ok }

// systemUsers are accounts a Debian or Ubuntu system already has (base-passwd
// and the packages bainode installs). The operator must be a new account.
var systemUsers = []string{
	"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
	"proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "_apt", "messagebus",
	"syslog", "sshd", "uuidd", "tcpdump", "landscape", "pollinate", "lxd", "dnsmasq",
	"usbmux", "tss", "fwupd-refresh", "polkitd", "dhcpcd", "ntp", "chrony", "docker",
}

func (c *settingsCheck) operator() {
	o := c.s.Operator
	switch {
	case !reUser.MatchString(o.Name):
		c.bad("operator.name", "%q is not a valid user name (a lower-case letter or '_', then up to 31 of a-z, 0-9, '_' and '-')", o.Name)
	case slices.Contains(systemUsers, o.Name) || strings.HasPrefix(o.Name, "systemd-"):
		c.bad("operator.name", "%q is a system account; the operator must be an account of its own", o.Name)
	}
	if o.UID < 1 || o.UID > 65533 {
		c.bad("operator.uid", "%d is out of range 1-65533", o.UID)
	} else if o.UID < 1000 {
		c.warn("operator.uid", "%d is in the system range (below 1000) and may clash with an account a package creates", o.UID)
	}
	if o.GID < 1 || o.GID > 65533 {
		c.bad("operator.gid", "%d is out of range 1-65533", o.GID)
	} else if o.GID < 1000 {
		c.warn("operator.gid", "%d is in the system range (below 1000) and may clash with a group a package creates", o.GID)
	}
	if !reShell.MatchString(o.Shell) {
		c.bad("operator.shell", "%q is not an absolute path to a shell", o.Shell)
	}
	for i, g := range o.Groups {
		if !reUser.MatchString(g) {
			c.bad(fmt.Sprintf("operator.groups[%d]", i), "%q is not a valid group name", g)
		}
	}
	if o.PasswordHash != "" && !reSHA512.MatchString(o.PasswordHash) {
		c.bad("operator.password_hash", "is not a SHA-512 crypt(3) hash ($6$...); 'bainode passwd' makes one")
	}
	if !o.SudoNopasswd && o.PasswordHash == "" && slices.Contains(o.Groups, "sudo") {
		c.bad("operator.sudo_nopasswd", "false needs password_hash: without either, %s cannot use sudo", o.Name)
	}
	for i, k := range o.SSHAuthorizedKeys {
		if !reSSHKey.MatchString(strings.TrimSpace(k)) {
			c.bad(fmt.Sprintf("operator.ssh_authorized_keys[%d]", i), "is not an OpenSSH public key line")
		}
	}
}

func (c *settingsCheck) artifacts() {
	switch c.s.Artifacts {
	case ArtifactsOnline, ArtifactsPayload:
	default:
		c.bad("artifacts", "%q is not an artifacts mode; want online or payload", c.s.Artifacts)
	}
}

func (c *settingsCheck) docker() {
	d := c.s.Docker
	if d.Version != "" && !reAptPin.MatchString(d.Version) {
		c.bad("docker.version", "%q is not an apt version", d.Version)
	}
	c.url("docker.repository", d.Repository)
	if d.Compose && !d.Enabled && c.set("docker.compose") {
		c.bad("docker.compose", "needs docker.enabled")
	}
}

func (c *settingsCheck) limits() {
	l := c.s.Limits
	if l.NOFILE < 1024 || l.NOFILE > nrOpen {
		c.bad("limits.nofile", "%d is out of range 1024-%d (the kernel's fs.nr_open)", l.NOFILE, nrOpen)
	}
	if l.NPROC < 1024 || l.NPROC > 4194304 {
		c.bad("limits.nproc", "%d is out of range 1024-4194304", l.NPROC)
	}
}

func (c *settingsCheck) sysctl() {
	for k, v := range c.s.Sysctl.Set {
		if msg := checkSysctl(k, v); msg != "" {
			c.bad("sysctl.set."+k, "%s", msg)
		}
	}
}

func (c *settingsCheck) python() {
	p := c.s.Python
	if p.BackendAI != "" {
		if c.set("python.version") || c.set("python.release") {
			c.bad("python.backendai", "conflicts with python.version/python.release: give one or the other")
		} else if v, ok := guide.PythonByBackendAI[p.BackendAI]; !ok {
			c.bad("python.backendai", "%q is not a known Backend.AI release line; want one of %s", p.BackendAI, strings.Join(BackendAIReleases(), ", "))
		} else {
			c.s.Python.Version, c.s.Python.Release = v[0], v[1]
		}
	}
	if !rePyVer.MatchString(c.s.Python.Version) {
		c.bad("python.version", "%q is not a CPython version like 3.12.4", c.s.Python.Version)
	}
	if !reRelease.MatchString(c.s.Python.Release) {
		c.bad("python.release", "%q is not a python-build-standalone release tag like 20240713", c.s.Python.Release)
	}
	if p.SHA256 != "" && !reHex64.MatchString(p.SHA256) {
		c.bad("python.sha256", "is not 64 lower-case hex digits")
	}
	if !reName.MatchString(p.Triple) {
		c.bad("python.triple", "%q is not a target triple", p.Triple)
	}
	if !reName.MatchString(p.Flavor) {
		c.bad("python.flavor", "%q is not an archive flavour", p.Flavor)
	}
	c.url("python.mirror", p.Mirror)
	checkNames(c.bad, "python.services", p.Services)
}

func (c *settingsCheck) hosts() {
	for i, h := range c.s.Hosts.Entries {
		f := fmt.Sprintf("hosts.entries[%d]", i)
		if a, err := netip.ParseAddr(h.IP); err != nil || !a.Is4() {
			c.bad(f+".ip", "%q is not an IPv4 address", h.IP)
		}
		if len(h.Names) == 0 {
			c.bad(f+".names", "at least one name is needed")
		}
		for j, n := range h.Names {
			if why := hostnameProblem(n); why != "" {
				c.bad(fmt.Sprintf("%s.names[%d]", f, j), "%q %s", short(n), why)
			}
		}
		if strings.ContainsAny(h.Comment, "\n#") {
			c.bad(f+".comment", "must be one line without '#'")
		}
	}
}

func (c *settingsCheck) storage() {
	names := map[string]bool{}
	for i, n := range c.s.Storage.Local {
		f := fmt.Sprintf("storage.local[%d]", i)
		if !reName.MatchString(n) {
			c.bad(f, "%q is not a directory name under /vfroot", n)
		} else if names[n] {
			c.bad(f, "/vfroot/%s is given twice", n)
		}
		names[n] = true
	}
	for i, m := range c.s.Storage.NFS {
		f := fmt.Sprintf("storage.nfs[%d]", i)
		if !reName.MatchString(m.Name) {
			c.bad(f+".name", "%q is not a directory name under /vfroot", m.Name)
		} else if names[m.Name] {
			c.bad(f+".name", "/vfroot/%s is given twice", m.Name)
		}
		names[m.Name] = true
		if why := nfsServerProblem(m.Server); why != "" {
			c.bad(f+".server", "%q %s", short(m.Server), why)
		}
		if !reExport.MatchString(m.Export) {
			c.bad(f+".export", "%q is not an absolute path (letters, digits and . _ - / only)", short(m.Export))
		}
		if m.Options != "" && !reMountOpts.MatchString(m.Options) {
			c.bad(f+".options", "must be one comma-separated word, as in fstab")
		}
	}
}

// maxGPUs bounds gpu.count: more than any server holds, so a typo shows.
const maxGPUs = 64

func (c *settingsCheck) gpu() {
	g := c.s.GPU
	if !reDriver.MatchString(g.Driver) {
		c.bad("gpu.driver", "%q is not an NVIDIA driver branch like 535", g.Driver)
	}
	if g.CUDA != "" && !reCUDA.MatchString(g.CUDA) {
		c.bad("gpu.cuda", "%q is not a CUDA version like 12-2", g.CUDA)
	}
	if g.ToolkitVersion != "" && !reAptPin.MatchString(g.ToolkitVersion) {
		c.bad("gpu.toolkit_version", "%q is not an apt version", g.ToolkitVersion)
	}
	if g.Count < 0 || g.Count > maxGPUs {
		c.bad("gpu.count", "%d is not a number of GPUs from 0 (at least one) to %d", g.Count, maxGPUs)
	}
	if g.Enabled && g.Toolkit && !c.s.Docker.Enabled {
		c.bad("gpu.toolkit", "needs docker.enabled: the toolkit configures Docker's runtime")
	}
}

func (c *settingsCheck) images() {
	im := c.s.Images
	for i, img := range im.Pull {
		if !reImage.MatchString(img) {
			c.bad(fmt.Sprintf("images.pull[%d]", i), "%q is not an image reference", short(img))
		}
	}
	if len(im.Pull) > 0 && !c.s.Docker.Enabled {
		c.bad("images.pull", "needs docker.enabled to pull images")
	}
	for i, ra := range im.Registries {
		f := fmt.Sprintf("images.registries[%d]", i)
		if !reRegistry.MatchString(ra.Registry) {
			c.bad(f+".registry", "%q is not a registry host (host or host:port)", short(ra.Registry))
		}
		if ra.Username == "" {
			c.bad(f+".username", "missing")
		} else if !reRegUser.MatchString(ra.Username) {
			c.bad(f+".username", "%q is not a registry user name (letters, digits and . _ @ + $ - only)", short(ra.Username))
		}
		// The token is a secret: its problems never quote it.
		if ra.Token == "" {
			c.bad(f+".token", "missing")
		} else if strings.ContainsAny(ra.Token, " \t") {
			c.bad(f+".token", "holds a blank; a registry token is one word")
		}
	}
}

// url checks a base URL that bainode writes to files every user of the node
// can read, and that apt or curl fetch from.
func (c *settingsCheck) url(field, s string) {
	u, err := url.Parse(s)
	switch {
	case err == nil && u.User != nil:
		// Never print the URL: it holds a password.
		c.bad(field, "holds a user name or password (user:pass@); it would be written to files every user can read, so bainode refuses it: use a mirror that needs no login")
	case strings.ContainsFunc(s, func(r rune) bool { return !strings.ContainsRune(urlChars, r) }):
		c.bad(field, "%q has a character a URL cannot hold unescaped (a blank, a quote, or non-ASCII); escape it with %%XX", short(s))
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		c.bad(field, "%q is not an http(s) URL", short(s))
	case strings.ContainsAny(s, "?#"):
		// Paths are appended to it, and in an apt sources line '#' starts
		// a comment.
		// Not quoted: a query may carry a token.
		c.bad(field, "has a query or fragment ('?' or '#'); it is a base URL that bainode appends paths to (and in an apt sources line '#' starts a comment)")
	}
}

// urlChars are the characters RFC 3986 allows in a URL.
const urlChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"

// short cuts a value for a message: a 300-character host name is quoted in part.
func short(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:60] + "..."
}
