package fetch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Sums maps file names to sha256 hex, as read from a SHA256SUMS file.
type Sums map[string]string

// ParseSHA256SUMS reads "<sha256>  <name>" or "<sha256> *<name>" lines, the
// format of sha256sum(1), Ubuntu's cloud-image SHA256SUMS and
// python-build-standalone's SHA256SUMS. A malformed line is an error, not
// skipped: a parser that skips is one an attacker can steer.
func ParseSHA256SUMS(b []byte) (Sums, error) {
	s := Sums{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		sum = strings.ToLower(sum)
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		if !ok || !isHexSum(sum) || name == "" {
			return nil, fmt.Errorf("SHA256SUMS line %d: want \"<sha256>  <file>\", got %q", n, line)
		}
		if old, dup := s[name]; dup && old != sum {
			return nil, fmt.Errorf("SHA256SUMS line %d: %s listed twice with different sums", n, name)
		}
		s[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("SHA256SUMS: %w", err)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("SHA256SUMS lists no file")
	}
	return s, nil
}

// VerifySHA256SUMS checks sig, a detached signature (binary, like Ubuntu's
// SHA256SUMS.gpg, or armored) over sums made by a key of keyring, then
// parses sums. Nothing is parsed before the signature is good.
func VerifySHA256SUMS(sums, sig []byte, keyring openpgp.EntityList) (Sums, error) {
	if len(keyring) == 0 {
		return nil, fmt.Errorf("SHA256SUMS: no trusted key to check the signature with")
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("SHA256SUMS: signature is missing")
	}
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP SIGNATURE-----")) {
		_, err = openpgp.CheckArmoredDetachedSignature(keyring, bytes.NewReader(sums), bytes.NewReader(sig), nil)
	} else {
		_, err = openpgp.CheckDetachedSignature(keyring, bytes.NewReader(sums), bytes.NewReader(sig), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("SHA256SUMS: bad signature: %w", err)
	}
	return ParseSHA256SUMS(sums)
}

// Artifact returns the artifact for file in the directory baseURL, pinned to
// the listed sum.
func (s Sums) Artifact(baseURL, file string) (Artifact, error) {
	sum, ok := s[file]
	if !ok {
		return Artifact{}, fmt.Errorf("SHA256SUMS of %s does not list %s", baseURL, file)
	}
	return Artifact{Name: file, URL: strings.TrimSuffix(baseURL, "/") + "/" + file, SHA256: sum}, nil
}

// FetchSHA256SUMS downloads baseURL/SHA256SUMS and, when keyring is given,
// baseURL/SHA256SUMS.gpg, and returns the verified sums. An empty keyring
// means the index is unsigned (python-build-standalone): its sums then only
// guard against corruption, and the lock pins them from then on.
func FetchSHA256SUMS(ctx context.Context, baseURL string, keyring openpgp.EntityList, o Options) (Sums, error) {
	o = o.withDefaults()
	base := strings.TrimSuffix(baseURL, "/")
	sums, err := getSmall(ctx, base+"/SHA256SUMS", o)
	if err != nil {
		return nil, err
	}
	if keyring == nil {
		return ParseSHA256SUMS(sums)
	}
	sig, err := getSmall(ctx, base+"/SHA256SUMS.gpg", o)
	if err != nil {
		return nil, err
	}
	s, err := VerifySHA256SUMS(sums, sig, keyring)
	if err != nil {
		return nil, fmt.Errorf("%s/SHA256SUMS: %w", base, err)
	}
	return s, nil
}

// maxIndexSize bounds what getSmall reads: indexes, not artifacts.
const maxIndexSize = 256 << 20

// getSmall GETs an index file (through the mirrors) into memory, retrying
// transient failures like Download does.
func getSmall(ctx context.Context, url string, o Options) ([]byte, error) {
	src := RewriteURL(url, o.Mirrors)
	var err error
	for attempt := 0; ; attempt++ {
		var b []byte
		if b, err = getOnce(ctx, src, o); err == nil {
			return b, nil
		}
		if attempt >= o.Retries || ctx.Err() != nil || isFinalStatus(err) {
			return nil, err
		}
		wait := o.Backoff << attempt
		if wait > o.MaxBackoff || wait <= 0 {
			wait = o.MaxBackoff
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", src, ctx.Err())
		case <-time.After(wait):
		}
	}
}

type statusError struct {
	url  string
	code int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: server returned %d %s", e.url, e.code, http.StatusText(e.code))
}

func isFinalStatus(err error) bool {
	se, ok := err.(*statusError)
	return ok && se.code < 500 && se.code != http.StatusRequestTimeout && se.code != http.StatusTooManyRequests
}

func getOnce(ctx context.Context, src string, o Options) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, fmt.Errorf("bad url %s: %w", src, err)
	}
	req.Header.Set("User-Agent", o.UserAgent)
	resp, err := o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: src, code: resp.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if len(b) > maxIndexSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not an index", src, maxIndexSize)
	}
	return b, nil
}
