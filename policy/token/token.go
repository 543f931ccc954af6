// Package token decodes and verifies the payment QR codes a customer can
// present at the till: PG1 signed tokens of the chain's own wallet, EMVCo
// consumer-presented QR codes, and opaque one-time codes of other wallets.
// It is pure: time and the replay ledger come in from the caller.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/veraison/go-cose"

	"github.com/posguard/posguard/policy"
)

// Kind is what sort of payment token a text is.
type Kind string

const (
	KindPG1     Kind = "pg1"
	KindEMV     Kind = "emv-cpm"
	KindOpaque  Kind = "opaque"
	KindUnknown Kind = "unknown"
)

// MaxTextLen is the longest token text accepted; longer text is refused
// before any decoding so a hostile QR cannot make the till work hard.
const MaxTextLen = 1024

// Reason is a stable code for why a token was refused; the policy and HQ
// match on it, so the strings never change.
type Reason string

const (
	Malformed     Reason = "malformed"
	TooLong       Reason = "too_long" // longer than MaxTextLen: no wallet makes such a code
	UnknownIssuer Reason = "unknown_issuer"
	UnknownKey    Reason = "unknown_key"
	AlgMismatch   Reason = "alg_mismatch"
	BadSignature  Reason = "bad_signature"
	Expired       Reason = "expired"
	NotYetValid   Reason = "not_yet_valid"
	TooOld        Reason = "too_old"
	Replayed      Reason = "replayed"
	ATCReplayed   Reason = "atc_replayed"
	Unknown       Reason = "unknown"
)

// Error is a refusal: a stable Reason and a sentence for people.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Msg }

func errorf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason code of err: "" for nil, the Reason of an
// *Error, and malformed for any other error.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var te *Error
	if errors.As(err, &te) {
		return te.Reason
	}
	return Malformed
}

// Ledger is the read side of the agent's durable memory of used tokens. The
// agent records a token's ReplayKey and ATC itself, in the same transaction
// as the decision, so Verify only asks.
type Ledger interface {
	// Seen reports whether a token with this replay key was already used.
	Seen(replayKey string) bool
	// LastATC is the highest EMV ATC recorded for the account.
	LastATC(account string) (uint32, bool)
}

// Token is a decoded payment token. Which fields are set depends on Kind.
// It never holds a full PAN.
type Token struct {
	Kind Kind `json:"kind"`

	// PG1
	Issuer       string    `json:"iss,omitempty"`
	Subject      string    `json:"sub,omitempty"`
	KID          string    `json:"kid,omitempty"`
	Alg          string    `json:"alg,omitempty"`
	TokenID      string    `json:"cti,omitempty"` // hex
	IssuedAt     time.Time `json:"iat,omitzero"`
	ExpiresAt    time.Time `json:"exp,omitzero"`
	NotBefore    time.Time `json:"nbf,omitzero"`
	DeviceID     string    `json:"dv,omitempty"` // hex
	DeviceSince  time.Time `json:"ds,omitzero"`
	AccountSince time.Time `json:"as,omitzero"`
	TopUpAt      time.Time `json:"ta,omitzero"`
	TopUpAmount  int64     `json:"tm,omitempty"`
	ForeignLogin bool      `json:"fl,omitempty"`

	// EMV CPM
	AID      string `json:"aid,omitempty"`
	Label    string `json:"label,omitempty"`
	PANLast4 string `json:"panLast4,omitempty"`
	ATC      uint32 `json:"atc,omitempty"`
	HasATC   bool   `json:"-"`
	TLV      []TLV  `json:"-"`

	// Opaque
	Wallet string `json:"wallet,omitempty"`

	// Account is the account key the policy and the ledger use; set by
	// Verify (EMV and opaque accounts need the chain's hash key).
	Account string `json:"account,omitempty"`
	// ReplayKey names this use of the token in the ledger; set by Verify.
	ReplayKey string `json:"replayKey,omitempty"`
}

// Payment is the token as the policy sees it.
func (t *Token) Payment() policy.Payment {
	return policy.Payment{
		Kind:         string(t.Kind),
		Issuer:       t.Issuer,
		Account:      t.Account,
		TokenID:      t.TokenID,
		DeviceID:     t.DeviceID,
		DeviceSince:  t.DeviceSince,
		AccountSince: t.AccountSince,
		TopUpAt:      t.TopUpAt,
		TopUpAmount:  t.TopUpAmount,
		ForeignLogin: t.ForeignLogin,
		ATC:          int(t.ATC),
	}
}

// PaymentFor is the Payment for a Verify result: the token's fields, and
// the reason code in Invalid when verification failed.
func PaymentFor(tok *Token, err error) policy.Payment {
	p := policy.Payment{Kind: string(KindUnknown)}
	if tok != nil {
		p = tok.Payment()
	}
	// A text that is no wallet's token at all is not a refused token: its
	// Kind "unknown" lets the policy's failMode.unknownToken decide, where
	// Invalid would send it to failMode.invalidToken.
	if r := ReasonOf(err); r != Unknown {
		p.Invalid = string(r)
	}
	return p
}

// Verifier checks tokens against the policy's tokens section. It is
// read-only once made and safe for concurrent use; make a new one when the
// policy changes.
type Verifier struct {
	issuers    map[string]map[string]*issuerKey
	opaque     []opaqueWallet
	maxAge     time.Duration
	skew       time.Duration
	accountKey []byte
}

type issuerKey struct {
	alg      cose.Algorithm
	verifier cose.Verifier
	err      error // why the policy's key cannot be used
	notAfter time.Time
}

type opaqueWallet struct {
	name     string
	re       *regexp.Regexp
	min, max int
}

// NewVerifier prepares a verifier for the policy's tokens section (nil
// means no issuers and no opaque wallets). accountKey is the chain-wide
// secret for the keyed hash of EMV PANs and opaque codes, so the same card
// has the same account key on every register and HQ denylists match.
func NewVerifier(t *policy.Tokens, accountKey []byte) *Verifier {
	v := &Verifier{issuers: map[string]map[string]*issuerKey{}, accountKey: accountKey}
	if t == nil {
		return v
	}
	v.maxAge, v.skew = t.MaxAge.D(), t.ClockSkew.D()
	for _, iss := range t.Issuers {
		keys := v.issuers[iss.Name]
		if keys == nil {
			keys = map[string]*issuerKey{}
			v.issuers[iss.Name] = keys
		}
		for _, k := range iss.Keys {
			ik := &issuerKey{notAfter: k.NotAfter}
			alg, err := parseAlg(k.Alg)
			if err == nil {
				ik.alg = alg
				ik.verifier, err = cose.NewVerifier(alg, k.Public)
			}
			if err != nil {
				ik.err = fmt.Errorf("key %q of issuer %q: %w", k.KID, iss.Name, err)
			}
			keys[k.KID] = ik
		}
	}
	for _, w := range t.Opaque {
		re := w.Re
		if re == nil {
			// The loader compiles patterns; this keeps hand-built policies
			// (tests, tools) working with the same anchoring.
			var err error
			if re, err = regexp.Compile(`^(?:` + w.Pattern + `)$`); err != nil {
				continue
			}
		}
		v.opaque = append(v.opaque, opaqueWallet{name: w.Name, re: re, min: w.MinLength, max: w.MaxLength})
	}
	return v
}

// Classify tells the kind of a token text from its shape alone.
func Classify(text []byte) Kind {
	switch {
	case hasPG1Prefix(text):
		return KindPG1
	case looksEMV(text):
		return KindEMV
	}
	return KindUnknown
}

// Decode decodes a token without verifying anything: for inspection. It
// cannot recognise opaque codes (they need the policy's patterns) and sets
// no Account or ReplayKey.
func Decode(text []byte) (*Token, error) {
	if len(text) > MaxTextLen {
		return nil, errorf(TooLong, "token text is %d bytes, more than %d", len(text), MaxTextLen)
	}
	switch Classify(text) {
	case KindPG1:
		p, err := decodePG1(text)
		if err != nil {
			return nil, err
		}
		return p.tok, nil
	case KindEMV:
		tok, _, err := decodeEMV(text)
		return tok, err
	}
	return &Token{Kind: KindUnknown}, nil
}

// Verify decodes and verifies a token presented at now. A nil ledger skips
// the replay checks. On failure the error is an *Error and the token is
// still returned with its Kind; its claims, Account and ReplayKey are set
// only when they can be trusted enough to record (PG1 after the signature
// check, EMV and opaque codes once decoded).
func (v *Verifier) Verify(text []byte, now time.Time, ledger Ledger) (*Token, error) {
	tok, err := v.verify(text, now, ledger)
	if tok == nil {
		tok = &Token{Kind: Classify(text)}
	}
	return tok, err
}

func (v *Verifier) verify(text []byte, now time.Time, ledger Ledger) (*Token, error) {
	if len(text) > MaxTextLen {
		return nil, errorf(TooLong, "token text is %d bytes, more than %d", len(text), MaxTextLen)
	}
	switch Classify(text) {
	case KindPG1:
		return v.verifyPG1(text, now, ledger)
	case KindEMV:
		return v.verifyEMV(text, ledger)
	}
	if tok := v.matchOpaque(text); tok != nil {
		if ledger != nil && ledger.Seen(tok.ReplayKey) {
			return tok, errorf(Replayed, "%s code was already used", tok.Wallet)
		}
		return tok, nil
	}
	h := v.keyedHash("unknown", text)
	tok := &Token{Kind: KindUnknown, Account: "unknown:" + h, ReplayKey: "unknown:" + h}
	return tok, errorf(Unknown, "text is no PG1 token, EMV QR or known wallet code")
}

// keyedHash is HMAC-SHA256 under the chain's account key, truncated to 128
// bits: enough to tell accounts apart, and it keeps PANs and codes out of
// every store and log. domain separates the uses of the key.
func (v *Verifier) keyedHash(domain string, data []byte) string {
	m := hmac.New(sha256.New, v.accountKey)
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil)[:16])
}
