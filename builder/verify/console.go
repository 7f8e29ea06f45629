package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Markers around a report on a console; overlays/verify/bainode-verify-report
// prints the same strings.
const (
	BeginMarker = "----- BEGIN BAINODE VERIFY REPORT -----"
	EndMarker   = "----- END BAINODE VERIFY REPORT -----"
)

// The frame between the markers (written by bainode-verify-report and by
// Frame):
//
//	bainode-verify-report v1 bytes=<n> sha256=<hex> lines=<n>
//	bvr 0001 <base64, 64 characters a line>
//	...
//
// A console is shared with the kernel and systemd, whose lines land between
// ours (and now and then inside one), the tty adds \r, and serial links lose
// bytes. Raw JSON would then parse wrong or not at all with no way to tell
// which; base64 lines tagged "bvr N" can be picked out of any noise, the
// numbers show a lost line, and the checksum catches the rest. Both patterns
// are searched anywhere in a line, so prefixes (timestamps from the capture
// tool, a half line of someone else's) do not matter.
const frameWidth = 64

var (
	headerRE = regexp.MustCompile(`bainode-verify-report v(\d+) bytes=(\d+) sha256=([0-9a-f]{64}) lines=(\d+)`)
	dataRE   = regexp.MustCompile(`bvr (\d{1,6}) ([A-Za-z0-9+/=]+)`)
)

// ErrNoReport means the console log holds no begin marker at all: the
// verifier never ran, or its output went elsewhere.
var ErrNoReport = errors.New("no bainode verify report on the console")

// Frame writes report (the verifier's JSON) to w between the markers, as
// bainode-verify-report does, byte for byte.
func Frame(w io.Writer, report []byte) error {
	var b strings.Builder
	enc := base64.StdEncoding.EncodeToString(report)
	var lines []string
	for len(enc) > frameWidth {
		lines = append(lines, enc[:frameWidth])
		enc = enc[frameWidth:]
	}
	if enc != "" {
		lines = append(lines, enc)
	}
	sum := sha256.Sum256(report)
	fmt.Fprintf(&b, "\n%s\n", BeginMarker)
	fmt.Fprintf(&b, "bainode-verify-report v1 bytes=%d sha256=%s lines=%d\n", len(report), hex.EncodeToString(sum[:]), len(lines))
	for i, l := range lines {
		fmt.Fprintf(&b, "bvr %04d %s\n", i+1, l)
	}
	fmt.Fprintf(&b, "%s\n", EndMarker)
	_, err := io.WriteString(w, b.String())
	return err
}

// block is the text between one begin marker and the end marker after it.
type block struct {
	lines []string
	sum   string // from the header, when it could be read
}

// Extract finds the verifier's report in a console log and parses it.
//
// The last block (begin to end marker) is the answer: a node that booted
// twice printed twice, and the newest report is the one that counts; a
// begin marker with no end after it is an error, not a reason to use an
// older block.
// If that block is damaged, an earlier intact copy of the same report (same
// checksum: the wrapper writes one copy per console device) is used;
// otherwise Extract fails rather than fall back to an older run. A block may
// also hold plain JSON (a hand-run "bainode-verify" between echoed markers).
func Extract(consoleLog []byte) (Report, error) {
	// \r\n from the tty, a lone \r from some capture tools.
	text := strings.ReplaceAll(string(consoleLog), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")

	var blocks []block
	var cur *block
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.Contains(line, BeginMarker):
			cur = &block{} // a new begin restarts: the earlier one never ended
		case strings.Contains(line, EndMarker):
			if cur != nil {
				blocks = append(blocks, *cur)
				cur = nil
			}
		case cur != nil:
			cur.lines = append(cur.lines, line)
		}
	}
	if cur != nil {
		// The newest report is still being written (or the capture stopped):
		// an older complete one would answer the wrong question.
		return Report{}, errors.New("verify report truncated: begin marker without end marker")
	}
	if len(blocks) == 0 {
		return Report{}, ErrNoReport
	}
	for i := range blocks {
		if m := headerRE.FindStringSubmatch(strings.Join(blocks[i].lines, "\n")); m != nil {
			blocks[i].sum = m[3]
		}
	}
	last := blocks[len(blocks)-1]
	rep, err := decodeBlock(last)
	if err == nil {
		return rep, nil
	}
	if last.sum != "" {
		for i := len(blocks) - 2; i >= 0; i-- {
			if blocks[i].sum != last.sum {
				continue
			}
			if r, err2 := decodeBlock(blocks[i]); err2 == nil {
				return r, nil
			}
		}
	}
	return Report{}, fmt.Errorf("last verify report on the console is damaged: %w", err)
}

func decodeBlock(b block) (Report, error) {
	var header []string
	data := map[int]string{}
	for _, line := range b.lines {
		if m := headerRE.FindStringSubmatch(line); m != nil {
			if header != nil && header[0] != m[0] {
				return Report{}, errors.New("two different frame headers")
			}
			header = m
			continue
		}
		if m := dataRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			if old, ok := data[n]; ok && old != m[2] {
				return Report{}, fmt.Errorf("line %d appears twice with different data", n)
			}
			data[n] = m[2]
		}
	}
	if header == nil && len(data) == 0 {
		// Plain JSON between the markers; noise lines would break it, and
		// Parse says so.
		return Parse(strings.NewReader(strings.Join(b.lines, "\n")))
	}
	if header == nil {
		return Report{}, errors.New("frame header missing")
	}
	if header[1] != "1" {
		return Report{}, fmt.Errorf("frame version %s, want 1", header[1])
	}
	size, _ := strconv.Atoi(header[2])
	nlines, _ := strconv.Atoi(header[4])
	var enc strings.Builder
	for i := 1; i <= nlines; i++ {
		l, ok := data[i]
		if !ok {
			return Report{}, fmt.Errorf("line %d of %d missing", i, nlines)
		}
		enc.WriteString(l)
	}
	if len(data) != nlines {
		return Report{}, fmt.Errorf("%d data lines, header says %d", len(data), nlines)
	}
	raw, err := base64.StdEncoding.DecodeString(enc.String())
	if err != nil {
		return Report{}, fmt.Errorf("bad base64: %w", err)
	}
	if len(raw) != size {
		return Report{}, fmt.Errorf("%d bytes, header says %d", len(raw), size)
	}
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != header[3] {
		return Report{}, fmt.Errorf("sha256 %s, header says %s", got, header[3])
	}
	return Parse(bytes.NewReader(raw))
}
