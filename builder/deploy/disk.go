package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lablup/bainode/builder/spec"
)

// DiskRule picks the node's target disk. Every set field must match; an
// empty rule matches every disk, and then there must be exactly one.
type DiskRule struct {
	ByPath string `json:"by_path,omitempty"` // a /dev/disk/by-path name, e.g. pci-0000:00:04.0
	Serial string `json:"serial,omitempty"`
	Size   int64  `json:"size,omitempty"` // bytes, within 1%
}

// RuleOf is the rule a site's node gives (nil: the only disk).
func RuleOf(d *spec.Disk) (DiskRule, error) {
	if d == nil {
		return DiskRule{}, nil
	}
	r := DiskRule{ByPath: d.ByPath, Serial: d.Serial}
	if d.Size != "" {
		var err error
		if r.Size, err = spec.DiskSize(d.Size); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (r DiskRule) String() string {
	var p []string
	if r.ByPath != "" {
		p = append(p, "by_path="+r.ByPath)
	}
	if r.Serial != "" {
		p = append(p, "serial="+r.Serial)
	}
	if r.Size != 0 {
		p = append(p, "size="+strconv.FormatInt(r.Size, 10))
	}
	if p == nil {
		return "the only disk"
	}
	return strings.Join(p, " ")
}

// Disk is a candidate target.
type Disk struct {
	Name   string   // vda, nvme0n1
	Dev    string   // /dev/vda
	Size   int64    // bytes
	Serial string   // may be empty
	ByPath []string // by-path names this disk answers to
}

func (d Disk) String() string {
	s := fmt.Sprintf("%s (%d bytes", d.Name, d.Size)
	if d.Serial != "" {
		s += ", serial " + d.Serial
	}
	if len(d.ByPath) > 0 {
		s += ", by-path " + d.ByPath[0]
	}
	return s + ")"
}

// skipDisk are block devices that are never a target.
var skipDisk = regexp.MustCompile(`^(loop|ram|zram|sr|fd|md|dm-|nbd|mtdblock)`)

// ListDisks reads the whole disks under sysBlock (/sys/block); dev is the
// directory of their device nodes (/dev). Removable, read-only and empty
// devices are left out.
func ListDisks(sysBlock, dev string) ([]Disk, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, err
	}
	var out []Disk
	for _, e := range ents {
		name := e.Name()
		if skipDisk.MatchString(name) {
			continue
		}
		dir := filepath.Join(sysBlock, name)
		if readTrim(dir, "removable") == "1" || readTrim(dir, "ro") == "1" {
			continue
		}
		sectors, err := strconv.ParseInt(readTrim(dir, "size"), 10, 64)
		if err != nil || sectors == 0 {
			continue
		}
		d := Disk{Name: name, Dev: filepath.Join(dev, name), Size: sectors * 512}
		for _, f := range []string{"serial", "device/serial", "device/wwid"} {
			if s := readTrim(dir, f); s != "" {
				d.Serial = s
				break
			}
		}
		d.ByPath = byPath(dir, name, dev)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readTrim(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

var (
	rePCI  = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	reATA  = regexp.MustCompile(`^ata([0-9]+)$`)
	reSCSI = regexp.MustCompile(`^[0-9]+:([0-9]+):([0-9]+):([0-9]+)$`)
	reNS   = regexp.MustCompile(`n([0-9]+)$`)
)

// byPath derives udev's by-path names for the device: the deploy
// environment has no udev. Names from a real /dev/disk/by-path are added
// when it exists.
func byPath(sysDir, name, dev string) []string {
	var out []string
	if real, err := filepath.EvalSymlinks(sysDir); err == nil {
		parts := strings.Split(real, "/")
		pci := ""
		var ata, scsi string
		for _, p := range parts {
			switch {
			case rePCI.MatchString(p):
				pci = p
				ata, scsi = "", ""
			case reATA.MatchString(p):
				ata = reATA.FindStringSubmatch(p)[1]
			case reSCSI.MatchString(p):
				m := reSCSI.FindStringSubmatch(p)
				scsi = m[1] + ":" + m[2] + ":" + m[3]
			}
		}
		if pci != "" {
			base := "pci-" + pci
			switch {
			case strings.HasPrefix(name, "nvme"):
				if m := reNS.FindStringSubmatch(name); m != nil {
					out = append(out, base+"-nvme-"+m[1])
				}
			case ata != "":
				out = append(out, base+"-ata-"+ata, base+"-ata-"+ata+".0")
			case scsi != "":
				out = append(out, base+"-scsi-0:"+scsi)
			default:
				out = append(out, base)
			}
		}
	}
	links, _ := os.ReadDir(filepath.Join(dev, "disk", "by-path"))
	for _, l := range links {
		if t, err := os.Readlink(filepath.Join(dev, "disk", "by-path", l.Name())); err == nil && filepath.Base(t) == name {
			out = append(out, l.Name())
		}
	}
	return out
}

// ErrNoDisk and ErrAmbiguous are the two refusals of Choose.
var (
	ErrNoDisk    = errors.New("no disk matches")
	ErrAmbiguous = errors.New("more than one disk matches; refusing to guess (set the node's disk: rule in the site)")
)

// Choose returns the one disk the rule names.
func (r DiskRule) Choose(disks []Disk) (Disk, error) {
	var hit []Disk
	for _, d := range disks {
		if r.matches(d) {
			hit = append(hit, d)
		}
	}
	list := func(ds []Disk) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.String())
		}
		if s == nil {
			return "none"
		}
		return strings.Join(s, ", ")
	}
	switch len(hit) {
	case 1:
		return hit[0], nil
	case 0:
		return Disk{}, fmt.Errorf("%w %s; disks: %s", ErrNoDisk, r, list(disks))
	}
	return Disk{}, fmt.Errorf("%w; rule %s; candidates: %s", ErrAmbiguous, r, list(hit))
}

func (r DiskRule) matches(d Disk) bool {
	if r.ByPath != "" {
		ok := false
		for _, p := range d.ByPath {
			ok = ok || p == r.ByPath
		}
		if !ok {
			return false
		}
	}
	if r.Serial != "" && d.Serial != r.Serial {
		return false
	}
	if r.Size != 0 {
		diff := d.Size - r.Size
		if diff < 0 {
			diff = -diff
		}
		if diff > r.Size/100 {
			return false
		}
	}
	return true
}
