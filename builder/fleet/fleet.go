// Package fleet is a client for bainoded's admin API (/api/v1): nodes and
// their tokens, admin tokens, the site file, provisioning events and
// cluster members. It is pure Go with no dependency on the server or its
// inventory, so the bainode CLI stays free of cgo and dqlite.
//
// The admin token is only ever sent in the Authorization header; it is
// never part of a URL or of an error message.
package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lablup/bainode/builder/spec"
)

// Client talks to one bainoded. Any member of a cluster will do: every
// member answers every route.
type Client struct {
	// BaseURL is the server, e.g. http://10.0.0.1:8080 (a trailing slash
	// and a missing "http://" are tolerated), or unix:PATH for an admin
	// API on a unix socket (bainoded --admin-listen unix:PATH).
	BaseURL string
	// Token is the admin token, sent as "Authorization: Bearer".
	Token string
	// HTTP is the client to use; nil means one with a 30 s timeout.
	HTTP *http.Client
}

// Node is a node as the admin API shows it.
type Node struct {
	Hostname string   `json:"hostname"`
	MACs     []string `json:"macs"`
	IP       string   `json:"ip,omitempty"`
	Role     string   `json:"role,omitempty"`
	// Overrides is YAML merged over the site for this node only.
	Overrides string `json:"overrides,omitempty"`
	// Token is the node's reporting token, filled in only in the answers of
	// PutNode and RotateNodeToken (it is embedded in the node's seed URLs
	// already).
	Token string `json:"token,omitempty"`
	// TokenRevoked says the node cannot report until its token is rotated.
	TokenRevoked bool `json:"token_revoked,omitempty"`
}

// AdminToken is an admin token as the server lists it: never the token,
// only an ID and the first characters of its SHA-256.
type AdminToken struct {
	ID      int64     `json:"id"`
	Prefix  string    `json:"prefix"`
	Name    string    `json:"name"` // empty for a member's token file
	Created time.Time `json:"created"`
	// Current marks the token the listing request was made with.
	Current bool `json:"current,omitempty"`
	// Token is filled in only in CreateAdminToken's answer, the one time
	// the server shows it.
	Token string `json:"token,omitempty"`
}

// Event is one provisioning report of a node: a cloud-init reporting event
// (Stage is its name, e.g. "modules-final/config-phone_home"; Result is
// start, success, fail or warn) or a phone_home post (Stage "phone-home",
// Result "done").
type Event struct {
	Node   string    `json:"node"`
	Stage  string    `json:"stage"`
	Result string    `json:"result"`
	Time   time.Time `json:"time"`
	Detail string    `json:"detail,omitempty"`
}

// NodeStatus is a node's latest event; a node that never reported has
// Result "pending" and a zero Time.
type NodeStatus struct {
	Event
	Role string `json:"role,omitempty"`
	// Deploy is the latest image-deploy stage (deploying, deployed,
	// failed, armed), when bainoded deploys images.
	Deploy *Event `json:"deploy,omitempty"`
}

// SiteVersion identifies a stored site file.
type SiteVersion struct {
	ID      int64     `json:"id"`
	Created time.Time `json:"created"`
}

// Member is one replica of a clustered bainoded.
type Member struct {
	ID      uint64 `json:"id"`
	Address string `json:"address"`
	Role    string `json:"role"`
	Leader  bool   `json:"leader"`
}

// Error is a non-2xx answer of the server.
type Error struct {
	Method     string
	Path       string // without query
	StatusCode int
	// Message is the server's explanation: its response body, trimmed, or
	// the "error" of a JSON answer. For a rejected site file it holds one
	// file:line:col problem per line.
	Message string
	// Problems are a rejected site file's problems, as the server found
	// them in the body it was sent (their File is the server's name for
	// it). Empty for other errors, and from a server that answers in text.
	Problems []spec.Problem
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message == "" {
		return msg
	}
	if strings.Contains(e.Message, "\n") {
		return msg + ":\n" + e.Message
	}
	return msg + ": " + e.Message
}

// StatusCode returns the HTTP status of an *Error in err's chain, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports whether err is the server's 404.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// Response size limits: lists of a few thousand nodes fit easily.
const (
	maxBody      = 64 << 20
	maxErrorBody = 64 << 10
)

// Base returns BaseURL in the form requests use: scheme://host[:port][/prefix]
// without a trailing slash.
func (c *Client) Base() (string, error) {
	raw := strings.TrimSpace(c.BaseURL)
	if raw == "" {
		return "", errors.New("no server URL")
	}
	if p, ok := c.socket(); ok {
		if p == "" {
			return "", errors.New("server unix: needs a socket path (unix:/run/bainoded/admin.sock)")
		}
		// Requests go to the socket; the host only fills the URL.
		return "http://bainoded", nil
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", c.BaseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("server URL %q: scheme must be http or https", c.BaseURL)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q has no host", c.BaseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server URL %q: only scheme://host[:port][/path] is allowed", c.BaseURL)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// socket returns PATH when BaseURL is unix:PATH.
func (c *Client) socket() (string, bool) {
	return strings.CutPrefix(strings.TrimSpace(c.BaseURL), "unix:")
}

func (c *Client) httpClient() *http.Client {
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	if p, ok := c.socket(); ok {
		// A copy of the client whose every connection is to the socket.
		u := *hc
		u.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p)
		}}
		return &u
	}
	return hc
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// do sends one request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, ctype string, out any) error {
	base, err := c.Base()
	if err != nil {
		return err
	}
	u := base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", spec.ProblemsMediaType+", application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		// *url.Error names the URL, which holds no secret.
		return fmt.Errorf("cannot reach bainoded: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(method, path, resp)
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if len(b) > maxBody {
		return fmt.Errorf("%s %s: answer larger than %d bytes", method, path, maxBody)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer (is %s a bainoded?): %w", method, path, base, err)
	}
	return nil
}

// apiError reads a non-2xx answer: plain text, or JSON with "error" and
// "problems" (a rejected site).
func apiError(method, path string, resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Method: method, Path: path, StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == spec.ProblemsMediaType || ct == "application/json" {
		var body struct {
			Error    string         `json:"error"`
			Problems []spec.Problem `json:"problems"`
		}
		if json.Unmarshal(b, &body) == nil && body.Error != "" {
			e.Message, e.Problems = strings.TrimSpace(body.Error), body.Problems
		}
	}
	return e
}

func nodePath(host string) (string, error) {
	if host == "" || strings.ContainsAny(host, "/\\") || host == "." || host == ".." {
		return "", fmt.Errorf("invalid hostname %q", host)
	}
	return "/api/v1/nodes/" + url.PathEscape(host), nil
}

// Nodes returns every node, sorted by hostname.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, nil, "", &out)
	return out, err
}

// Node returns one node; a missing one is an error for which IsNotFound
// is true.
func (c *Client) Node(ctx context.Context, host string) (Node, error) {
	var out Node
	p, err := nodePath(host)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, http.MethodGet, p, nil, nil, "", &out)
	return out, err
}

// PutNode creates n or replaces the node of that hostname, and returns it
// as stored (MACs normalized) with its reporting token. The server refuses
// a node the stored site cannot render (400) and a MAC of another node (409).
func (c *Client) PutNode(ctx context.Context, n Node) (Node, error) {
	var out Node
	p, err := nodePath(n.Hostname)
	if err != nil {
		return out, err
	}
	if n.MACs == nil {
		n.MACs = []string{}
	}
	n.Token, n.TokenRevoked = "", false
	b, err := json.Marshal(n)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, http.MethodPut, p, nil, bytes.NewReader(b), "application/json", &out)
	return out, err
}

// DeleteNode removes a node; its events stay.
func (c *Client) DeleteNode(ctx context.Context, host string) error {
	p, err := nodePath(host)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil, "", nil)
}

// RotateNodeToken gives a node a new reporting token and returns the node
// with it. The old token stops working at once; the node gets the new one
// in vendor-data the next time it fetches its seed.
func (c *Client) RotateNodeToken(ctx context.Context, host string) (Node, error) {
	var out Node
	p, err := nodePath(host)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, http.MethodPost, p+"/token", nil, nil, "", &out)
	return out, err
}

// RevokeNodeToken stops a node's token from working; the node cannot
// report until RotateNodeToken gives it a new one.
func (c *Client) RevokeNodeToken(ctx context.Context, host string) error {
	p, err := nodePath(host)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p+"/token", nil, nil, "", nil)
}

// AdminTokens lists the active admin tokens by ID.
func (c *Client) AdminTokens(ctx context.Context) ([]AdminToken, error) {
	var out []AdminToken
	err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, "", &out)
	return out, err
}

// CreateAdminToken makes a new admin token; the answer's Token is the only
// copy (the server keeps its hash).
func (c *Client) CreateAdminToken(ctx context.Context, name string) (AdminToken, error) {
	var out AdminToken
	b, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		return out, err
	}
	err = c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, bytes.NewReader(b), "application/json", &out)
	return out, err
}

// RevokeAdminToken revokes an admin token for good. The server refuses
// (409) to revoke the token the client itself uses.
func (c *Client) RevokeAdminToken(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+strconv.FormatInt(id, 10), nil, nil, "", nil)
}

// Events returns the latest limit events of a node, oldest first; limit 0
// returns all of them. Events outlive their node: a deleted and re-added
// hostname shows its earlier history too.
func (c *Client) Events(ctx context.Context, host string, limit int) ([]Event, error) {
	p, err := nodePath(host)
	if err != nil {
		return nil, err
	}
	var out []Event
	err = c.do(ctx, http.MethodGet, p+"/events", url.Values{"limit": {strconv.Itoa(limit)}}, nil, "", &out)
	return out, err
}

// Redeploy re-arms an image-mode node: its next network boot writes its
// role's image again.
func (c *Client) Redeploy(ctx context.Context, host string) error {
	p, err := nodePath(host)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, p+"/redeploy", nil, nil, "", nil)
}

// PushSite stores a new version of the site file. The server validates it
// and renders every node against it first; on a 400 the *Error's Message
// lists the problems as file:line:col lines, and its Problems hold them
// one by one.
func (c *Client) PushSite(ctx context.Context, yaml []byte) (SiteVersion, error) {
	var out SiteVersion
	err := c.do(ctx, http.MethodPut, "/api/v1/site", nil, bytes.NewReader(yaml), "application/yaml", &out)
	return out, err
}

// Site returns the current site file and its version id.
func (c *Client) Site(ctx context.Context) ([]byte, int64, error) {
	base, err := c.Base()
	if err != nil {
		return nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/site", nil)
	if err != nil {
		return nil, 0, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot reach bainoded: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, apiError(http.MethodGet, "/api/v1/site", resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, 0, err
	}
	id, _ := strconv.ParseInt(resp.Header.Get("Bainode-Site-Version"), 10, 64)
	return b, id, nil
}

// Status returns every node with its latest event, sorted by hostname.
func (c *Client) Status(ctx context.Context) ([]NodeStatus, error) {
	var out struct {
		Nodes []NodeStatus `json:"nodes"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, nil, "", &out)
	return out.Nodes, err
}

// Members returns the replicas of a clustered server.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out struct {
		Members []Member `json:"members"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, nil, "", &out)
	return out.Members, err
}
