package qemu

import (
	"strings"
	"testing"
)

// The probe's modules come out of the base's initrd with their
// dependencies first.
func TestProbeModules(t *testing.T) {
	img := Need(t)
	files, err := initrdFiles(img.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	var dep string
	for p, b := range files {
		if strings.HasSuffix(p, "/modules.dep") {
			dep = string(b)
		}
	}
	order, err := moduleClosure(dep, probeModules)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[m] = i
	}
	for _, pair := range [][2]string{{"cdrom.ko", "sr_mod.ko"}, {"libata.ko", "ahci.ko"}, {"virtio_ring.ko", "virtio_blk.ko"}} {
		a, b := -1, -1
		for m, i := range pos {
			if strings.HasSuffix(m, "/"+pair[0]) {
				a = i
			}
			if strings.HasSuffix(m, "/"+pair[1]) {
				b = i
			}
		}
		if a < 0 || b < 0 || a > b {
			t.Errorf("%s must load before %s: order %v", pair[0], pair[1], order)
		}
	}
}
