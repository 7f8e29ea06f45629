package verify

import (
	"encoding/xml"
	"io"
	"strings"
)

// The JUnit XML shape that Jenkins, GitLab and GitHub test reporters read.
// encoding/xml escapes text and replaces characters XML cannot carry.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Hostname string      `xml:"hostname,attr,omitempty"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes r as one JUnit test suite named suiteName (the host
// when empty); see WriteJUnitRuns.
func WriteJUnit(w io.Writer, r Report, suiteName string) error {
	return WriteJUnitRuns(w, []Run{{Name: suiteName, Report: r}})
}

// WriteJUnitRuns writes one JUnit document with a test suite per run, named
// by the run (the host when empty). Each check is a test case named by its
// id, with classname suite.family ("bai-a01.user"), so reporters group
// checks by node and family. Failed checks carry a <failure>, skipped ones
// a <skipped> with the reason; times are 0 because the verifier does not
// time checks.
func WriteJUnitRuns(w io.Writer, runs []Run) error {
	doc := junitSuites{Name: "bainode-verify", Time: "0"}
	for _, run := range runs {
		suite := junitSuiteOf(run.Report, run.Name)
		doc.Tests += suite.Tests
		doc.Failures += suite.Failures
		doc.Skipped += suite.Skipped
		doc.Suites = append(doc.Suites, suite)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func junitSuiteOf(r Report, suiteName string) junitSuite {
	if suiteName == "" {
		suiteName = r.Host
	}
	if suiteName == "" {
		suiteName = "bainode-verify"
	}
	s := r.Count()
	suite := junitSuite{
		Name: suiteName, Hostname: r.Host, Tests: len(r.Checks),
		Failures: s.Fail, Skipped: s.Skip, Time: "0",
	}
	for _, c := range r.Checks {
		tc := junitCase{Name: c.ID, Classname: suiteName + "." + family(c.ID), Time: "0"}
		body := "expected: " + c.Expected + "\nactual: " + c.Actual
		if c.Detail != "" {
			body += "\ndetail: " + c.Detail
		}
		switch c.Status {
		case StatusFail:
			msg := c.Detail
			if msg == "" {
				msg = "expected " + c.Expected + ", got " + c.Actual
			}
			tc.Failure = &junitFailure{Message: oneLine(msg), Type: "verify", Text: body + "\n"}
		case StatusSkip:
			tc.Skipped = &junitSkipped{Message: oneLine(c.Detail)}
		default:
			tc.SystemOut = body + "\n"
		}
		suite.Cases = append(suite.Cases, tc)
	}
	return suite
}

// oneLine keeps attribute values on one line; XML would turn a newline in
// an attribute into a space on reading anyway.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
