package spec_test

import (
	"encoding/json"
	"testing"

	"github.com/lablup/bainode/builder/spec"
)

// A problem's JSON is what bainoded answers a rejected site with: the
// severity as a word, and back.
func TestProblemJSON(t *testing.T) {
	p := spec.Problem{File: "site.yaml", Line: 3, Column: 5, Path: "nodes[0].ip", Msg: "no gateway", Severity: spec.SeverityWarning}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"file":"site.yaml","line":3,"column":5,"field":"nodes[0].ip","message":"no gateway","severity":"warning"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back spec.Problem
	if err := json.Unmarshal(b, &back); err != nil || back != p {
		t.Errorf("round trip: %+v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"message":"x","severity":"fatal"}`), &back); err == nil {
		t.Errorf("severity fatal was accepted")
	}
}
