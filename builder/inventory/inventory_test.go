package inventory_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/inventory/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) inventory.Store { return inventory.NewMemory() })
}

func TestNormalizeMAC(t *testing.T) {
	const want = "aa:bb:cc:0d:ee:ff"
	for _, in := range []string{
		"aa:bb:cc:0d:ee:ff", "AA:BB:CC:0D:EE:FF", "aa-bb-cc-0d-ee-ff", "AA-BB-CC-0D-EE-FF",
		"aabb.cc0d.eeff", "AABB.CC0D.EEFF", "aabbcc0deeff", "AaBbCc0dEeFf",
	} {
		got, err := inventory.NormalizeMAC(in)
		if err != nil || got != want {
			t.Errorf("NormalizeMAC(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "aa:bb:cc:dd:ee", "aa:bb-cc:dd:ee:ff", "aa:bb:cc:dd:ee:fg", "aabb.ccdd-eeff",
		"aabbccddeef", "aabbccddeeff0", "a:bb:cc:dd:ee:fff", "../../etc/pa", "aa%3abb%3acc",
		"aa:bb:cc:dd:ee:ff:00:11", "aabbccddeeg0", "aa.bb.cc.dd.ee.ff", "aab:bcc:dde:eff",
	} {
		if got, err := inventory.NormalizeMAC(in); err == nil {
			t.Errorf("NormalizeMAC(%q): got %q, want an error", in, got)
		}
	}
}

func TestNormalizeMACs(t *testing.T) {
	got, err := inventory.NormalizeMACs([]string{"AA-BB-CC-DD-EE-FF", "001122334455"})
	if err != nil || len(got) != 2 || got[0] != "aa:bb:cc:dd:ee:ff" || got[1] != "00:11:22:33:44:55" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := inventory.NormalizeMACs([]string{"aabbccddeeff", "AA:BB:CC:DD:EE:FF"}); err == nil {
		t.Errorf("duplicate in two notations: want an error")
	}
}

func FuzzNormalizeMAC(f *testing.F) {
	for _, s := range []string{"aa:bb:cc:dd:ee:ff", "AABB.CCDD.EEFF", "aabbccddeeff", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := inventory.NormalizeMAC(s)
		if err != nil {
			return
		}
		// Canonical form is a fixed point.
		if again, err := inventory.NormalizeMAC(n); err != nil || again != n || len(n) != 17 {
			t.Errorf("NormalizeMAC(%q) = %q, re-normalized to %q, %v", s, n, again, err)
		}
	})
}

func TestCheckHostname(t *testing.T) {
	for _, ok := range []string{"a", "gpu-01", "node1.example.com", "0abc"} {
		if err := inventory.CheckHostname(ok); err != nil {
			t.Errorf("CheckHostname(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", ".", "a..b", "-a", "a-", "A1", "a_b", "a/b", "a b",
		"a%2fb", string(make([]byte, 64))} {
		if err := inventory.CheckHostname(bad); err == nil {
			t.Errorf("CheckHostname(%q): want an error", bad)
		}
	}
}

func TestTokens(t *testing.T) {
	tok, err := inventory.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	h := inventory.HashToken(tok)
	if !inventory.TokenMatches(h, tok) {
		t.Errorf("token does not match its own hash")
	}
	for _, bad := range []string{"", tok + "x", "x"} {
		if inventory.TokenMatches(h, bad) {
			t.Errorf("TokenMatches(%q): got true", bad)
		}
	}
	if inventory.TokenMatches("", "") {
		t.Errorf("empty hash matched")
	}
	k := []byte("key")
	if inventory.NodeToken(k, "a", 1) == inventory.NodeToken(k, "b", 1) {
		t.Errorf("two nodes share a token")
	}
	if inventory.NodeToken(k, "a", 1) != inventory.NodeToken(k, "a", 1) {
		t.Errorf("NodeToken is not deterministic")
	}
	if inventory.NodeToken(k, "a", 1) == inventory.NodeToken(k, "a", 2) {
		t.Errorf("rotation kept the token")
	}
	// Generation 0 keeps the tokens of nodes stored before rotation existed.
	m := hmac.New(sha256.New, k)
	m.Write([]byte("bainode node token\x00a"))
	if got := inventory.NodeToken(k, "a", 0); got != base64.RawURLEncoding.EncodeToString(m.Sum(nil)) {
		t.Errorf("generation 0 changed the derivation: %s", got)
	}
	g1, err1 := inventory.FirstTokenGen()
	g2, err2 := inventory.FirstTokenGen()
	if err1 != nil || err2 != nil || g1 <= 0 || g2 <= 0 || g1 == g2 {
		t.Errorf("FirstTokenGen: %d %v, %d %v; want two different positive numbers", g1, err1, g2, err2)
	}
}
