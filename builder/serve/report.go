package serve

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/lablup/bainode/builder/inventory"
)

// cloudEvent is what cloud-init's webhook reporting handler posts
// (cloudinit/reporting/events.py ReportingEvent.as_dict); subiquity and
// curtin post the same shape.
type cloudEvent struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	EventType   string  `json:"event_type"` // start or finish
	Origin      string  `json:"origin"`
	Timestamp   float64 `json:"timestamp"`
	Result      string  `json:"result"` // SUCCESS, FAIL or WARN on finish
}

// report stores one cloud-init reporting event for {host}.
func (s *server) report(w http.ResponseWriter, r *http.Request) {
	host, ok := s.nodeAuth(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReportBody))
	if err != nil {
		bodyError(w, err)
		return
	}
	var ev cloudEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Name == "" ||
		(ev.EventType != "start" && ev.EventType != "finish") {
		http.Error(w, "expected a cloud-init reporting event", http.StatusBadRequest)
		return
	}
	result := "start"
	if ev.EventType == "finish" {
		result = strings.ToLower(clean(ev.Result, 16))
		if result == "" {
			result = "finish"
		}
	}
	s.addEvent(w, r, inventory.Event{Node: host, Stage: clean(ev.Name, 256), Result: result,
		Detail: clean(ev.Description, 2048)})
}

// phoneHome stores cloud-init's phone_home form post for {host}.
func (s *server) phoneHome(w http.ResponseWriter, r *http.Request) {
	host, ok := s.nodeAuth(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPhoneHomeBody)
	if err := r.ParseForm(); err != nil {
		bodyError(w, err)
		return
	}
	var detail []string
	for _, k := range []string{"instance_id", "hostname", "fqdn"} {
		if v := r.PostForm.Get(k); v != "" && v != "N/A" {
			detail = append(detail, k+"="+clean(v, 256))
		}
	}
	// Host keys are long and belong in known_hosts, not in the event; note
	// which ones came.
	var keys []string
	for k, v := range r.PostForm {
		if strings.HasPrefix(k, "pub_key_") && len(v) > 0 && v[0] != "N/A" && v[0] != "" {
			keys = append(keys, clean(strings.TrimPrefix(k, "pub_key_"), 32))
		}
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		detail = append(detail, "keys="+strings.Join(keys, ","))
	}
	s.addEvent(w, r, inventory.Event{Node: host, Stage: "phone-home", Result: "done",
		Detail: strings.Join(detail, " ")})
}

func (s *server) addEvent(w http.ResponseWriter, r *http.Request, e inventory.Event) {
	e.Time = time.Now().UTC() // node clocks are often wrong this early in boot
	if err := s.store.AddEvent(r.Context(), e); err != nil {
		s.storeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// nodeAuth checks that the request carries the token of the node named in
// the path, from the path or an Authorization: Bearer header. Unknown nodes
// and wrong tokens get the same answer.
func (s *server) nodeAuth(w http.ResponseWriter, r *http.Request) (string, bool) {
	host, token := r.PathValue("host"), r.PathValue("token")
	if token == "" {
		token = bearer(r)
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bainode node"`)
		http.Error(w, "missing node token", http.StatusUnauthorized)
		return "", false
	}
	if inventory.CheckHostname(host) != nil {
		http.Error(w, "forbidden", http.StatusForbidden)
		return "", false
	}
	hash, err := s.tokenHash(r.Context(), host)
	if errors.Is(err, inventory.ErrNotFound) || err == nil && !inventory.TokenMatches(hash, token) {
		s.log.Warn("report refused", "node", host, "remote", r.RemoteAddr)
		http.Error(w, "forbidden", http.StatusForbidden)
		return "", false
	}
	if err != nil {
		s.storeError(w, r, err)
		return "", false
	}
	return host, true
}

func bearer(r *http.Request) string {
	const p = "bearer "
	h := r.Header.Get("Authorization")
	if len(h) > len(p) && strings.EqualFold(h[:len(p)], p) {
		return strings.TrimSpace(h[len(p):])
	}
	return ""
}

// clean keeps node-supplied text printable and short before it is stored
// and later shown to operators.
func clean(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
}
