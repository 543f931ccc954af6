package bundle_test

import (
	"testing"

	"github.com/posguard/posguard/policy/bundle"
)

func TestPeekPolicy(t *testing.T) {
	k := newKeys(t)
	p := loadPolicy(t)
	b, err := bundle.SignPolicy(k.ed, bundle.AlgEdDSA, "hq-ed", p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := bundle.PeekPolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Metadata
	if h.Name != m.Name || h.Version != m.Version || !h.IssuedAt.Equal(m.IssuedAt) || !h.ExpiresAt.Equal(m.ExpiresAt) {
		t.Errorf("peek %+v, policy metadata %+v", h, m)
	}
	delta, err := bundle.Sign(k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypeDenylistDelta, []byte(`{"metadata":{"name":"x","version":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	noVersion, err := bundle.Sign(k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypePolicy, []byte(`{"metadata":{"name":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want bundle.Reason
	}{
		{"not COSE", []byte("bundle v2"), bundle.Malformed},
		{"empty", nil, bundle.Malformed},
		{"a denylist delta", delta, bundle.WrongType},
		{"no version", noVersion, bundle.Invalid},
		{"truncated", b[:len(b)/2], bundle.Malformed},
	} {
		_, err := bundle.PeekPolicy(c.b)
		if got := bundle.ReasonOf(err); got != c.want {
			t.Errorf("%s: reason %q (%v), want %q", c.name, got, err, c.want)
		}
	}
}

func FuzzPeekPolicy(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := bundle.PeekPolicy(data)
		if err != nil {
			if bundle.ReasonOf(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if h.Name == "" || h.Version <= 0 {
			t.Fatalf("accepted %+v", h)
		}
	})
}
