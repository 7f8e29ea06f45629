package iso

import (
	"encoding/binary"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// Replay turns m back into a Spec that rebuilds it: the same tree (read
// from m's file), the same boot entries and the same kind of system area,
// laid out anew. changes replaces or adds files (path → content). It also
// returns notes on what of m it could not carry over.
func (m *Medium) Replay(changes map[string][]byte, epoch time.Time) (Spec, []string, error) {
	spec := Spec{VolumeID: m.VolumeID, Catalog: m.Catalog, Epoch: epoch}
	if spec.Catalog == "" {
		spec.Catalog = "boot.catalog"
	}
	var notes []string
	have := map[string]bool{}
	for _, f := range m.Files {
		have[f.Path] = true
		if f.Path == m.Catalog {
			continue // go-diskfs writes the new catalog there
		}
		if c, ok := changes[f.Path]; ok {
			if f.Dir || f.Link != "" {
				return Spec{}, nil, fmt.Errorf("%s: not a regular file on %s", f.Path, m.Path)
			}
			f.Content, f.ModTime = Content{Data: c}, epoch
		}
		spec.Files = append(spec.Files, f)
	}
	var added []string
	for p := range changes {
		if !have[p] {
			added = append(added, p)
		}
	}
	sort.Strings(added)
	for _, p := range added {
		for d := path.Dir(p); d != "." && !have[d]; d = path.Dir(d) {
			have[d] = true
			spec.Files = append(spec.Files, File{Path: d, Dir: true, Mode: 0o555, ModTime: epoch})
		}
		spec.Files = append(spec.Files, File{Path: p, Content: Content{Data: changes[p]}, Mode: 0o444, ModTime: epoch})
	}

	biosLBA := uint32(0)
	for i, e := range m.Boot {
		be := BootEntry{Platform: e.Platform, Path: e.Path, LoadSize: e.Sectors, InfoTable: e.InfoTable, GRUB2Info: e.GRUB2Info}
		if e.Path == "" {
			spec.Appended = append(spec.Appended, Content{Path: m.Path, Offset: int64(e.LBA) * Block, Size: e.Size})
			be.Appended = len(spec.Appended)
		}
		if e.Media != 0 {
			return Spec{}, nil, fmt.Errorf("%s: boot entry %d uses emulation %d; only no-emulation images are supported", m.Path, i, e.Media)
		}
		if e.Platform == BIOS && biosLBA == 0 {
			biosLBA = e.LBA
		}
		spec.Boot = append(spec.Boot, be)
	}

	a := m.Area
	sa := SystemArea{Scheme: a.Scheme, Code: a.Code, ProtectiveBootable: a.ProtBoot, ForceBootable: a.ForceBoot}
	if a.MBR != nil && biosLBA != 0 {
		switch {
		case binary.LittleEndian.Uint64(a.MBR[432:]) == uint64(biosLBA)*4+4:
			sa.Patch = PatchGRUB2
		case binary.LittleEndian.Uint64(a.MBR[432:]) == uint64(biosLBA)*4:
			sa.Patch = PatchIsolinux
		}
	}
	bootAt := func(sector uint64) int {
		for i, e := range m.Boot {
			if uint64(e.LBA)*4 == sector {
				return i
			}
		}
		return -1
	}
	switch a.Scheme {
	case MBR:
		for i, e := range a.MBRParts {
			p := Partition{MBRType: e.Type, Bootable: e.Bootable}
			switch b := bootAt(e.Start); {
			case e.Start == 0:
				p.Extent = ExtentWhole
			case b >= 0:
				p.Extent, p.BootEntry = ExtentBootImage, b
			default:
				return Spec{}, nil, fmt.Errorf("%s: MBR partition %d at sector %d is neither the whole medium nor a boot image", m.Path, i+1, e.Start)
			}
			sa.Partitions = append(sa.Partitions, p)
		}
	case GPT:
		for i, e := range a.GPTParts {
			p := Partition{GPTType: e.Type, GPTName: e.Name, GPTAttrs: e.Attrs}
			switch b := bootAt(e.First); {
			case b >= 0:
				p.Extent, p.BootEntry = ExtentBootImage, b
			case e.First == 64 && e.Last < uint64(m.Blocks)*4:
				p.Extent = ExtentISO
			default:
				notes = append(notes, fmt.Sprintf("GPT partition %d (%q, sectors %d-%d) is neither the ISO volume nor a boot image: left out", i+1, e.Name, e.First, e.Last))
				continue
			}
			sa.Partitions = append(sa.Partitions, p)
		}
	}
	spec.System = sa
	return spec, notes, nil
}

// Describe names m's layout from its structures, for logs and errors.
func (m *Medium) Describe() string {
	var parts []string
	for _, e := range m.Boot {
		where := e.Path
		if where == "" {
			where = fmt.Sprintf("appended partition at sector %d", uint64(e.LBA)*4)
		}
		extra := ""
		if e.InfoTable {
			extra += " +boot-info-table"
		}
		if e.GRUB2Info {
			extra += " +grub2-boot-info"
		}
		parts = append(parts, fmt.Sprintf("%s: %s%s", e.Platform, where, extra))
	}
	parts = append(parts, "system area: "+m.Area.Scheme.String())
	return strings.Join(parts, "; ")
}
