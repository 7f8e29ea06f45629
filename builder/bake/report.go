package bake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SealReport is what bainode-seal prints on the console before power-off.
type SealReport struct {
	Version          int      `json:"version"`
	CloudInitStatus  string   `json:"cloud_init_status"`
	CloudInitVersion string   `json:"cloud_init_version"`
	SystemdVersion   string   `json:"systemd_version"`
	CleanCommand     string   `json:"clean_command,omitempty"`
	MachineID        string   `json:"machine_id,omitempty"` // "uninitialized" or "empty"
	BakeMachineID    string   `json:"bake_machine_id,omitempty"`
	BakeHostKeys     []string `json:"bake_host_keys,omitempty"` // ssh-keygen -l fingerprints
	Actions          []string `json:"actions"`
	Errors           []string `json:"errors"`
	Fstrim           string   `json:"fstrim,omitempty"`
	// Held are the apt timers and services masked during the bake and
	// restored by the seal, with their state before and after.
	Held             []HeldUnit `json:"held,omitempty"`
	Packages         [][]string `json:"packages,omitempty"` // name, version, arch
	Kernels          []string   `json:"kernels,omitempty"`
	CloudInitLogTail string     `json:"cloud_init_log_tail,omitempty"`

	// The NVIDIA module's vermagic per installed kernel, "-" for none.
	DriverVermagic map[string]string `json:"driver_vermagic,omitempty"`
}

// HeldUnit is a unit the bake held: masked for the bake's boot, unmasked by the seal.
type HeldUnit struct {
	Unit   string `json:"unit"`
	Before string `json:"before"` // systemctl is-enabled before the bake held it
	Held   bool   `json:"held"`   // the runtime mask was in place at the seal
	After  string `json:"after"`  // after the seal restored it
}

// Markers and frame of bainode-seal's report: the same scheme as the
// verifier's (see builder/verify), base64 lines that survive a noisy console.
const (
	sealBegin = "----- BEGIN BAINODE SEAL REPORT -----"
	sealEnd   = "----- END BAINODE SEAL REPORT -----"
)

var (
	sealHeaderRE = regexp.MustCompile(`bainode-seal-report v1 bytes=(\d+) sha256=([0-9a-f]{64}) lines=(\d+)`)
	sealLineRE   = regexp.MustCompile(`bsr (\d{4,6}) ([A-Za-z0-9+/=]+)`)
)

var errNoSealReport = errors.New("no seal report on the console")

// parseSealReport reads the last framed report from a console log.
func parseSealReport(console string) (SealReport, error) {
	var rep SealReport
	i := strings.LastIndex(console, sealBegin)
	if i < 0 {
		return rep, errNoSealReport
	}
	body := console[i:]
	j := strings.Index(body, sealEnd)
	if j < 0 {
		return rep, errors.New("seal report: no end marker (console cut short?)")
	}
	body = body[:j]
	h := sealHeaderRE.FindStringSubmatch(body)
	if h == nil {
		return rep, errors.New("seal report: no header")
	}
	n, _ := strconv.Atoi(h[3])
	parts := make([]string, n)
	for _, m := range sealLineRE.FindAllStringSubmatch(body, -1) {
		k, _ := strconv.Atoi(m[1])
		if k >= 1 && k <= n {
			parts[k-1] = m[2]
		}
	}
	for k, p := range parts {
		if p == "" {
			return rep, fmt.Errorf("seal report: line %d of %d lost", k+1, n)
		}
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return rep, fmt.Errorf("seal report: %w", err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != h[2] {
		return rep, errors.New("seal report: checksum mismatch (console garbled)")
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return rep, fmt.Errorf("seal report: %w", err)
	}
	return rep, nil
}
