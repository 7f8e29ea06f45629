package inventory

import (
	"context"
	"errors"
)

// ErrLastVoter means removing a member would leave the cluster with no
// voter, which no command can undo.
var ErrLastVoter = errors.New("inventory: cannot remove the last voter")

// MemberRemover is implemented by replicated stores whose membership can
// be changed through the running cluster.
type MemberRemover interface {
	// RemoveMember removes the member with that raft ID (decimal) or
	// address through the leader and returns it as it was. Unknown members
	// give ErrNotFound; the only voter gives ErrLastVoter.
	RemoveMember(ctx context.Context, idOrAddress string) (Member, error)
}

// ErrRemoveSelf means a member was asked to remove itself; it would keep
// running outside the cluster. Stop it and ask another member.
var ErrRemoveSelf = errors.New("inventory: a member cannot remove itself; stop it and ask another member")
