package dqlite

import (
	"context"
	"errors"
	"strconv"

	"github.com/canonical/go-dqlite/client"

	"github.com/lablup/bainode/builder/inventory"
)

var _ inventory.MemberRemover = (*Store)(nil)

// errTransferred makes retry look for the new leader.
var errTransferred = errors.New("dqlite: leadership transferred")

// RemoveMember implements inventory.MemberRemover. A leader being removed
// first hands leadership to another voter, so the removal is committed by
// a member that stays.
func (s *Store) RemoveMember(ctx context.Context, idOrAddress string) (inventory.Member, error) {
	var out inventory.Member
	tried := false
	err := s.onLeader(ctx, func(ctx context.Context, cli *client.Client, leader *client.NodeInfo, nodes []client.NodeInfo) error {
		target, ok := findMember(nodes, idOrAddress)
		if !ok {
			if tried { // an earlier attempt went through before its answer was lost
				return nil
			}
			return inventory.ErrNotFound
		}
		out = inventory.Member{ID: target.ID, Address: target.Address, Role: target.Role.String(),
			Leader: leader != nil && leader.ID == target.ID}
		if target.ID == s.app.ID() {
			return inventory.ErrRemoveSelf
		}
		voters := 0
		for _, n := range nodes {
			if n.Role == client.Voter {
				voters++
			}
		}
		if target.Role == client.Voter && voters <= 1 {
			return inventory.ErrLastVoter
		}
		if out.Leader {
			for _, n := range nodes {
				if n.Role == client.Voter && n.ID != target.ID && cli.Transfer(ctx, n.ID) == nil {
					return errTransferred
				}
			}
			return errors.New("dqlite: no other voter took over leadership")
		}
		tried = true
		return cli.Remove(ctx, target.ID)
	})
	return out, err
}

// onLeader runs op, retried, with a client of the current leader, the
// leader itself and the configuration it holds.
func (s *Store) onLeader(ctx context.Context,
	op func(ctx context.Context, cli *client.Client, leader *client.NodeInfo, nodes []client.NodeInfo) error) error {
	return s.retry(ctx, func(ctx context.Context) error {
		cli, err := s.app.Leader(ctx)
		if err != nil {
			return err
		}
		defer cli.Close()
		leader, err := cli.Leader(ctx)
		if err != nil {
			return err
		}
		nodes, err := cli.Cluster(ctx)
		if err != nil {
			return err
		}
		return op(ctx, cli, leader, nodes)
	})
}

// findMember matches a raft ID (decimal or 0x-hex) or an address.
func findMember(nodes []client.NodeInfo, idOrAddress string) (client.NodeInfo, bool) {
	id, idErr := strconv.ParseUint(idOrAddress, 0, 64)
	for _, n := range nodes {
		if n.Address == idOrAddress || (idErr == nil && n.ID == id) {
			return n, true
		}
	}
	return client.NodeInfo{}, false
}
