// Package inventory holds what bainoded knows about a fleet: the site file
// (with its history), the nodes keyed by hostname and MAC, the provisioning
// events nodes report, and hashed admin tokens. Store is the interface the
// HTTP layer depends on; Memory implements it for tests and single-process
// use, and package inventory/dqlite replicates it.
package inventory

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// Errors returned by every Store implementation; callers test with errors.Is.
var (
	ErrNotFound = errors.New("inventory: not found")
	// ErrConflict means a MAC is already registered to another node.
	ErrConflict = errors.New("inventory: mac belongs to another node")
	// ErrRevoked means an admin token was revoked; it stays revoked.
	ErrRevoked = errors.New("inventory: admin token revoked")
)

// Node is one host of the fleet.
type Node struct {
	Hostname string
	// MACs are in canonical form (see NormalizeMAC) and unique fleet-wide.
	MACs      []string
	IP        string // registered address; used by bind-ip mode
	Role      string // e.g. manager, agent, storage
	Overrides []byte // YAML merged over the site for this node only
	// TokenHash is the hex SHA-256 of the node's reporting token; empty means
	// the node cannot report (never given one, or revoked).
	TokenHash string
	// TokenGen is the generation the token derives from (see NodeToken);
	// rotation increments it, so an old token never comes back.
	TokenGen int64
}

// DeployStage is the Stage of image deploy events (deploying, deployed,
// failed, armed). PruneEvents keeps each node's latest one besides its
// latest event: it decides whether the node boots its disk or is imaged.
const DeployStage = "deploy"

// Event is one provisioning report from a node.
type Event struct {
	Node   string // hostname
	Stage  string // cloud-init event name, or "phone-home"
	Result string // start, success, fail, warn, done
	Time   time.Time
	Detail string
}

// AdminToken is the stored record of an admin token: never the token.
type AdminToken struct {
	ID      int64
	Hash    string // HashToken of the token
	Name    string // empty for tokens registered from a member's token file
	Created time.Time
}

// SiteVersion is one stored revision of the site file.
type SiteVersion struct {
	ID      int64
	YAML    []byte
	Created time.Time
}

// Member describes one replica of a clustered store.
type Member struct {
	ID      uint64 `json:"id"`
	Address string `json:"address"`
	Role    string `json:"role"`
	Leader  bool   `json:"leader"`
}

// Store is the inventory. Implementations are safe for concurrent use and
// return ErrNotFound for missing sites, nodes and tokens.
type Store interface {
	// PutSite stores a new site version and returns it.
	PutSite(ctx context.Context, yaml []byte) (SiteVersion, error)
	// Site returns the latest site version.
	Site(ctx context.Context) (SiteVersion, error)
	// SiteHistory returns up to limit versions, newest first (limit <= 0: all).
	SiteHistory(ctx context.Context, limit int) ([]SiteVersion, error)

	// PutNode creates or replaces a node by hostname. MACs must already be
	// canonical; a MAC owned by another node gives ErrConflict. Replacing
	// keeps the stored TokenHash and TokenGen, so an edit can neither undo
	// a rotation nor revive a revoked token; SetNodeToken changes them.
	PutNode(ctx context.Context, n Node) error
	// SetNodeToken sets a node's token generation and hash (empty: revoked)
	// and changes the revision; ErrNotFound if the node does not exist.
	SetNodeToken(ctx context.Context, hostname string, gen int64, hash string) error
	DeleteNode(ctx context.Context, hostname string) error
	Node(ctx context.Context, hostname string) (Node, error)
	NodeByMAC(ctx context.Context, mac string) (Node, error)
	// Nodes returns every node sorted by hostname.
	Nodes(ctx context.Context) ([]Node, error)

	AddEvent(ctx context.Context, e Event) error
	// Events returns up to limit events of one node, oldest first
	// (limit <= 0: all).
	Events(ctx context.Context, node string, limit int) ([]Event, error)
	// Status returns the latest event of every node that reported,
	// sorted by hostname.
	Status(ctx context.Context) ([]Event, error)
	// PruneEvents deletes events older than before, except each node's
	// latest and its latest DeployStage event, and returns how many went. Running it twice is harmless.
	PruneEvents(ctx context.Context, before time.Time) (int64, error)

	// Revision changes whenever the site or any node changes (not on
	// events), so renders can be cached against it.
	Revision(ctx context.Context) (int64, error)
	// Secret returns the fleet-wide key that node tokens derive from,
	// creating it on first use.
	Secret(ctx context.Context) ([]byte, error)

	// PutAdminToken records the hash (see HashToken) of an admin token from
	// a token file, unnamed; a known hash is left as it is. A revoked hash
	// gives ErrRevoked.
	PutAdminToken(ctx context.Context, hash string) error
	// AdminToken returns nil for an active token's hash, ErrRevoked for a
	// revoked one and ErrNotFound otherwise.
	AdminToken(ctx context.Context, hash string) error
	// CreateAdminToken records a new named token's hash.
	CreateAdminToken(ctx context.Context, hash, name string) (AdminToken, error)
	// AdminTokens lists the active tokens by ID.
	AdminTokens(ctx context.Context) ([]AdminToken, error)
	// RevokeAdminToken revokes an active token. Its hash is kept, marked
	// revoked, so no token file can bring it back. ErrNotFound if no active
	// token has that ID.
	RevokeAdminToken(ctx context.Context, id int64) error
}

// Clusterer is implemented by replicated stores.
type Clusterer interface {
	Members(ctx context.Context) ([]Member, error)
}

// NewToken returns a random token for an admin.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewSecret returns a random key for Store.Secret implementations.
func NewSecret() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

// HashToken is what stores keep instead of a token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NodeToken derives a node's reporting token from the fleet secret and the
// node's token generation. It is derived rather than stored so seeds can
// embed it while the store keeps only its hash. Generation 0 is the
// derivation of nodes stored before rotation existed, kept so their tokens
// stay valid.
func NodeToken(secret []byte, hostname string, gen int64) string {
	m := hmac.New(sha256.New, secret)
	msg := "bainode node token\x00" + hostname
	if gen != 0 {
		msg += "\x00" + strconv.FormatInt(gen, 10)
	}
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// FirstTokenGen picks the token generation of a new node. It is random so
// that a hostname deleted and added again never gets back a token it had
// before (which may have been revoked); rotation counts up from there.
func FirstTokenGen() (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b[:])>>2) + 1, nil // leaves room to count up
}

// TokenMatches compares a presented token with a stored hash in constant
// time; an empty hash never matches.
func TokenMatches(hash, token string) bool {
	if hash == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hash), []byte(HashToken(token))) == 1
}
