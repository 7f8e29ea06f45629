package dqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	godqlite "github.com/canonical/go-dqlite"
	"github.com/canonical/go-dqlite/client"
	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/inventory"
)

// info is go-dqlite's info.yaml: this member's raft ID and address.
type info struct {
	ID      uint64 `yaml:"ID"`
	Address string `yaml:"Address"`
}

func readInfo(dir string) (info, error) {
	var in info
	path := filepath.Join(dir, "info.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return in, fmt.Errorf("%w (is %s a member's data directory?)", err, dir)
	}
	if err := yaml.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("%s: %w", path, err)
	}
	if in.ID == 0 || in.Address == "" {
		return in, fmt.Errorf("%s: no ID or Address", path)
	}
	return in, nil
}

// Recover forces a new raft configuration onto the stopped member whose
// data directory is dir, for when a majority of voters is lost for good
// and no leader can be elected. keep lists the members of the new
// configuration, all voters; the member itself is always kept, and an
// empty keep leaves it alone as a one-member cluster. Members are matched
// to this one by ID or address; others need the ID from their own
// info.yaml. It returns the configuration written.
//
// Anything only the lost members had is gone. Start the member normally
// afterwards; other kept members need a copy of dir's raft files first.
func Recover(dir string, keep []inventory.Member) ([]inventory.Member, error) {
	self, err := readInfo(dir)
	if err != nil {
		return nil, err
	}
	// The same lock as a running member: rewriting the log under a live
	// node would corrupt it.
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()

	nodes := []client.NodeInfo{{ID: self.ID, Address: self.Address, Role: client.Voter}}
	seen := map[uint64]bool{self.ID: true}
	addrs := map[string]bool{self.Address: true}
	for _, m := range keep {
		if m.ID == self.ID || (m.ID == 0 && m.Address == self.Address) {
			if m.Address != "" && m.Address != self.Address {
				return nil, fmt.Errorf("member %d is this member, whose address is %s, not %s", m.ID, self.Address, m.Address)
			}
			continue
		}
		if m.ID == 0 || m.Address == "" {
			return nil, fmt.Errorf("member %q: other members need ID=ADDRESS (the ID is in their info.yaml)", m.Address)
		}
		if seen[m.ID] || addrs[m.Address] {
			return nil, fmt.Errorf("member %d=%s listed twice", m.ID, m.Address)
		}
		seen[m.ID], addrs[m.Address] = true, true
		nodes = append(nodes, client.NodeInfo{ID: m.ID, Address: m.Address, Role: client.Voter})
	}
	if err := godqlite.ReconfigureMembershipExt(dir, nodes); err != nil {
		return nil, fmt.Errorf("dqlite: reconfigure %s: %w", dir, err)
	}
	// go-dqlite looks for the leader among cluster.yaml's members; the lost
	// ones would only be dialled in vain.
	store, err := client.NewYamlNodeStore(filepath.Join(dir, "cluster.yaml"))
	if err == nil {
		err = store.Set(context.Background(), nodes)
	}
	if err != nil {
		return nil, fmt.Errorf("dqlite: raft configuration rewritten, but not %s: %w",
			filepath.Join(dir, "cluster.yaml"), err)
	}
	out := make([]inventory.Member, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, inventory.Member{ID: n.ID, Address: n.Address, Role: n.Role.String()})
	}
	return out, nil
}
