package pxe

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/internal/golden"
)

func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", filepath.FromSlash(name)), got)
}

// goldenNodes are two nodes of different series, one behind a MAC in
// dash notation, so both spellings reach the configs normalised.
func goldenNodes(t *testing.T) []Node {
	base := "http://10.20.30.1:8080/pxe/" + IDPlaceholder + "/"
	var nodes []Node
	for _, n := range []struct{ host, mac, target string }{
		{"bai-a01", "52:54:00:20:30:20", "ubuntu-20.04"},
		{"bai-a02", "52-54-00-20-30-22", "ubuntu-24.04"},
	} {
		e, err := AutoinstallEntry(n.target, base, n.host, 1_480_370_176) // 20.04.6 live-server's size
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, Node{Hostname: n.host, MAC: n.mac, Entry: e})
	}
	return nodes
}

func TestConfigsGolden(t *testing.T) {
	var tr Tree
	if err := tr.Configs(goldenNodes(t)); err != nil {
		t.Fatal(err)
	}
	for _, p := range tr.Paths() {
		goldenFile(t, p, tr.Files[p].Data)
	}
}

func TestEntryValidate(t *testing.T) {
	ok := Entry{Name: "x", Kernel: "x/linux", Initrd: "x/initrd", Args: []string{"ds=nocloud-net;s=http://h/"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Entry{
		{Name: "x", Kernel: "../linux", Initrd: "x/initrd"},
		{Name: "x", Kernel: "x/linux", Initrd: "x/initrd", Args: []string{"a=${b}"}},
		{Name: "x", Kernel: "x/linux", Initrd: "x/initrd", Args: []string{"a='b'"}},
		{Name: "x", Kernel: "x/linux", Initrd: "x/initrd", Args: []string{"---"}},
		{Name: "x", Kernel: "x/linux", Initrd: "x/initrd", Args: []string{strings.Repeat("a", 2048)}},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
	if got := grubWord("ds=nocloud-net;s=http://h/"); got != "'ds=nocloud-net;s=http://h/'" {
		t.Errorf("grubWord: %s", got)
	}
}
