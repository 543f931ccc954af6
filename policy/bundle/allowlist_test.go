package bundle_test

import (
	"testing"
	"time"

	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// The allowlist and the denylist share payload types but never verify as
// each other: an allow delta replayed on the denylist topic (or the other
// way round) is WrongType, whatever its bytes.
func TestAllowlistBundles(t *testing.T) {
	k := newKeys(t)
	at := time.Date(2019, 7, 3, 10, 0, 0, 0, time.UTC)
	d := wire.Delta{Epoch: "e1", Seq: 1, Add: []string{"acct-a"}, IssuedAt: at,
		Details: map[string]wire.ListDetail{"acct-a": {ExpiresAt: at.Add(720 * time.Hour), Rule: "case:7"}}}
	ad, err := bundle.SignAllowDelta(k.ed, bundle.AlgEdDSA, "hq-ed", d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bundle.VerifyAllowDelta(ad, k.trusted)
	if err != nil || got.Details["acct-a"].Rule != "case:7" {
		t.Fatalf("VerifyAllowDelta = %+v, %v", got, err)
	}
	s := wire.Snapshot{Epoch: "e1", Seq: 1, Accounts: []string{"acct-a"}, IssuedAt: at, Details: d.Details}
	as, err := bundle.SignAllowSnapshot(k.ed, bundle.AlgEdDSA, "hq-ed", s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.VerifyAllowSnapshot(as, k.trusted); err != nil {
		t.Fatalf("VerifyAllowSnapshot: %v", err)
	}
	// The same payload signed as a denylist delta.
	dd, err := bundle.SignDelta(k.ed, bundle.AlgEdDSA, "hq-ed", d)
	if err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func() error{
		"deny delta as allow delta":     func() error { _, err := bundle.VerifyAllowDelta(dd, k.trusted); return err },
		"allow delta as deny delta":     func() error { _, err := bundle.VerifyDelta(ad, k.trusted); return err },
		"allow snapshot as deny":        func() error { _, err := bundle.VerifySnapshot(as, k.trusted); return err },
		"allow snapshot as allow delta": func() error { _, err := bundle.VerifyAllowDelta(as, k.trusted); return err },
	} {
		if err := check(); bundle.ReasonOf(err) != bundle.WrongType {
			t.Errorf("%s: err = %v, want %s", name, err, bundle.WrongType)
		}
	}
	// An allow entry without an expiry is not signed.
	d.Details = nil
	if _, err := bundle.SignAllowDelta(k.ed, bundle.AlgEdDSA, "hq-ed", d); err == nil {
		t.Fatal("signed an allow entry without expiry")
	}
	// Nor verified, if someone else signed it.
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	forged := mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypeAllowlistDelta, raw)
	if _, err := bundle.VerifyAllowDelta(forged, k.trusted); bundle.ReasonOf(err) != bundle.Invalid {
		t.Fatalf("allow delta without expiry: err = %v, want %s", err, bundle.Invalid)
	}
}
