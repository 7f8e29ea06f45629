// Package verify reads the report of the in-guest verifier
// (overlays/verify/bainode-verify) and presents it: a table for people,
// JUnit XML for CI, and extraction from a serial console log for QEMU
// smoke tests.
//
// The verifier is a bash script so that it runs on a bare node (Ubuntu
// 20.04/22.04/24.04, Debian 12) with nothing but coreutils; this package
// holds only the Go side of its JSON contract.
package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Check statuses.
const (
	StatusPass = "pass"
	StatusFail = "fail"
	StatusSkip = "skip"
)

// Version is the only report version this package reads.
const Version = 1

// Check is one verified fact. ID is stable across runs (e.g. "user.uid",
// "sysctl.net.core.somaxconn"); Expected and Actual are what the guide
// wants and what the node has; Detail says why, or the skip reason.
type Check struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	Detail   string `json:"detail"`
}

// Summary counts checks by status.
type Summary struct {
	Pass int `json:"pass"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// Report is the verifier's whole output for one node.
type Report struct {
	Version int     `json:"version"`
	Host    string  `json:"host"`
	Checks  []Check `json:"checks"`
	Summary Summary `json:"summary"`
}

// Parse reads one JSON report and checks that it is whole: known version,
// at least one check, unique ids, known statuses and a summary that agrees
// with the checks (a truncated or hand-edited report fails here, not later
// as a silent pass).
func Parse(r io.Reader) (Report, error) {
	var rep Report
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return Report{}, fmt.Errorf("parse verify report: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Report{}, errors.New("parse verify report: data after the report")
	}
	if err := rep.validate(); err != nil {
		return Report{}, fmt.Errorf("parse verify report: %w", err)
	}
	return rep, nil
}

func (r Report) validate() error {
	if r.Version != Version {
		return fmt.Errorf("version %d, want %d", r.Version, Version)
	}
	if len(r.Checks) == 0 {
		return errors.New("no checks")
	}
	seen := make(map[string]bool, len(r.Checks))
	for i, c := range r.Checks {
		if c.ID == "" {
			return fmt.Errorf("check %d has no id", i)
		}
		if seen[c.ID] {
			return fmt.Errorf("duplicate check id %q", c.ID)
		}
		seen[c.ID] = true
		switch c.Status {
		case StatusPass, StatusFail, StatusSkip:
		default:
			return fmt.Errorf("check %q: status %q is not pass, fail or skip", c.ID, c.Status)
		}
	}
	if got := r.Count(); got != r.Summary {
		return fmt.Errorf("summary %+v does not match the checks %+v", r.Summary, got)
	}
	return nil
}

// Count counts the checks by status (Summary as the checks say it).
func (r Report) Count() Summary {
	var s Summary
	for _, c := range r.Checks {
		switch c.Status {
		case StatusPass:
			s.Pass++
		case StatusFail:
			s.Fail++
		case StatusSkip:
			s.Skip++
		}
	}
	return s
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	return r.Count().Fail > 0 || r.Summary.Fail > 0
}

// Failures returns the failed checks, in report order.
func (r Report) Failures() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			out = append(out, c)
		}
	}
	return out
}

// family is the part of an id before the first dot ("user" of "user.uid").
func family(id string) string {
	for i := 0; i < len(id); i++ {
		if id[i] == '.' {
			return id[:i]
		}
	}
	return id
}
