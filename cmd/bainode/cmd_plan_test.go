package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPlanCommand(t *testing.T) {
	out, errs, code := bainode(t, "", "plan", "--example", "cluster", "--node", "bai-a01")
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"bai-a01: role agent", "image steps", "node steps", "gpu-toolkit", "downloads"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "bai-m1") {
		t.Errorf("--node bai-a01 printed another node:\n%s", out)
	}

	out, errs, code = bainode(t, "", "plan", "--example", "cluster", "--json")
	if code != 0 {
		t.Fatalf("plan --json: exit %d\n%s", code, errs)
	}
	var ps []struct {
		Node  string
		Steps []struct{ Name, Where string }
	}
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	if len(ps) != 3 || ps[0].Node != "bai-m1" || len(ps[0].Steps) == 0 {
		t.Errorf("plan --json: want 3 plans starting with bai-m1, got %+v", ps)
	}

	if _, errs, code = bainode(t, "", "plan", "--node", "ghost"); code != 2 || !strings.Contains(errs, `"ghost"`) {
		t.Errorf("plan --node ghost: exit %d, %s", code, errs)
	}
	if out, _, code = bainode(t, "", "plan", "--help"); code != 0 || !strings.Contains(out, "Examples:") {
		t.Errorf("plan --help: exit %d\n%s", code, out)
	}
}
