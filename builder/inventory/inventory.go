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
	"encoding/hex"
	"errors"
	"time"
)

// Errors returned by every Store implementation; callers test with errors.Is.
var (
	ErrNotFound = errors.New("inventory: not found")
	// ErrConflict means a MAC is already registered to another node.
	ErrConflict = errors.New("inventory: mac belongs to another node")
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
	// the node cannot report.
	TokenHash string
}

// Event is one provisioning report from a node.
type Event struct {
	Node   string // hostname
	Stage  string // cloud-init event name, or "phone-home"
	Result string // start, success, fail, warn, done
	Time   time.Time
	Detail string
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
	// canonical; a MAC owned by another node gives ErrConflict.
	PutNode(ctx context.Context, n Node) error
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

	// Revision changes whenever the site or any node changes (not on
	// events), so renders can be cached against it.
	Revision(ctx context.Context) (int64, error)
	// Secret returns the fleet-wide key that node tokens derive from,
	// creating it on first use.
	Secret(ctx context.Context) ([]byte, error)

	// PutAdminToken records the hash (see HashToken) of an admin token.
	PutAdminToken(ctx context.Context, hash string) error
	// AdminToken reports ErrNotFound unless hash was stored.
	AdminToken(ctx context.Context, hash string) error
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

// NodeToken derives a node's reporting token from the fleet secret. It is
// derived rather than stored so seeds can embed it while the store keeps
// only its hash.
func NodeToken(secret []byte, hostname string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("bainode node token\x00" + hostname))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TokenMatches compares a presented token with a stored hash in constant
// time; an empty hash never matches.
func TokenMatches(hash, token string) bool {
	if hash == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hash), []byte(HashToken(token))) == 1
}
