package bundle

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/veraison/go-cose"
)

// Header is what a policy bundle says about itself: enough for HQ's fleet
// view to tell which version the registers are being asked to take.
type Header struct {
	Name      string    `json:"name"`
	Version   int64     `json:"version"`
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	Stores    []string  `json:"stores,omitempty"` // the policy's scope; empty: every store
}

// PeekPolicy reads the header of a policy bundle WITHOUT verifying its
// signature. HQ holds no register's trusted keys, and only HQ identities
// may write the policy topics, so the header is good for a progress view
// and nothing else: each register still verifies the bundle and reports
// its own verdict in its status. Refusals are *Error like Verify's.
func PeekPolicy(b []byte) (Header, error) {
	if len(b) > MaxPolicyBytes {
		return Header{}, refuse(Malformed, "%d bytes, limit %d for %s", len(b), MaxPolicyBytes, TypePolicy)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(b); err != nil {
		return Header{}, refuse(Malformed, "not a tagged COSE_Sign1: %v", err)
	}
	ct, ok := msg.Headers.Protected[cose.HeaderLabelContentType].(string)
	if !ok {
		return Header{}, refuse(Malformed, "protected content type missing or not a text string")
	}
	if ct != TypePolicy {
		return Header{}, refuse(WrongType, "content type %q, want %q", ct, TypePolicy)
	}
	if msg.Payload == nil {
		return Header{}, refuse(Malformed, "detached payload")
	}
	// Only the two fields needed; the rest of the policy is the
	// registers' to validate.
	var doc struct {
		Metadata Header `json:"metadata"`
		Scope    struct {
			Stores []string `json:"stores"`
		} `json:"scope"`
	}
	if err := json.Unmarshal(msg.Payload, &doc); err != nil {
		return Header{}, refuse(Invalid, "policy payload: %v", err)
	}
	h := doc.Metadata
	h.Stores = doc.Scope.Stores
	switch {
	case h.Name == "" || len(h.Name) > 256 || !utf8.ValidString(h.Name):
		return Header{}, refuse(Invalid, "policy name %q: want 1..256 bytes of UTF-8", h.Name)
	case h.Version <= 0:
		return Header{}, refuse(Invalid, "policy %s version %d: want a positive version", h.Name, h.Version)
	case len(h.Stores) > 10_000:
		return Header{}, refuse(Invalid, "policy %s v%d: %d scope stores, limit 10000", h.Name, h.Version, len(h.Stores))
	}
	return h, nil
}

// String is "name vN".
func (h Header) String() string { return fmt.Sprintf("%s v%d", h.Name, h.Version) }
