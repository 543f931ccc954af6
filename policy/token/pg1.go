package token

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// PG1Prefix starts every PG1 token text.
const PG1Prefix = "PG1:"

// CWT claim labels (RFC 8392) and the wallet's risk claims (DESIGN.md).
const (
	claimIss = 1
	claimSub = 2
	claimExp = 4
	claimNbf = 5
	claimIat = 6
	claimCti = 7
)

func hasPG1Prefix(text []byte) bool { return bytes.HasPrefix(text, []byte(PG1Prefix)) }

// claimsDecMode decodes the claims map strictly: duplicate keys, tags and
// indefinite lengths are refused, and the size limits are far below what
// fits in 1,024 bytes of text anyway.
var claimsDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		IntDec:           cbor.IntDecConvertSigned,
		MaxNestedLevels:  4,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err) // constant options: a failure is a programming error
	}
	return dm
}()

// coseDecMode checks the whole COSE_Sign1 is well-formed within tight
// limits before go-cose decodes it; tags stay allowed for the tag 18 wrap.
var coseDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 16,
		MaxMapPairs:      64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// claimsEncMode encodes the claims deterministically (RFC 8949 core rules).
var claimsEncMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// pg1 is a decoded, not yet verified PG1 token.
type pg1 struct {
	tok *Token
	msg *cose.Sign1Message
	cti []byte
}

func decodePG1(text []byte) (*pg1, error) {
	raw, err := Base45Decode(text[len(PG1Prefix):])
	if err != nil {
		return nil, errorf(Malformed, "PG1 text is not base45: %v", err)
	}
	if len(raw) == 0 {
		return nil, errorf(Malformed, "PG1 token is empty")
	}
	if err := coseDecMode.Wellformed(raw); err != nil {
		return nil, errorf(Malformed, "PG1 token is not well-formed CBOR: %v", err)
	}
	var msg cose.Sign1Message
	switch raw[0] {
	case 0xD2: // tag 18, COSE_Sign1
		err = msg.UnmarshalCBOR(raw)
	case 0x84: // untagged four-element array
		var u cose.UntaggedSign1Message
		err = u.UnmarshalCBOR(raw)
		msg = cose.Sign1Message(u)
	default:
		return nil, errorf(Malformed, "PG1 token is not a COSE_Sign1 (first byte %02X)", raw[0])
	}
	if err != nil {
		return nil, errorf(Malformed, "PG1 token is not a valid COSE_Sign1: %v", err)
	}
	if _, ok := msg.Headers.Protected[cose.HeaderLabelCritical]; ok {
		return nil, errorf(Malformed, "PG1 token has critical header parameters, none are supported")
	}
	p := &pg1{tok: &Token{Kind: KindPG1}, msg: &msg}
	if err := p.decodeClaims(msg.Payload); err != nil {
		return nil, err
	}
	if kid, ok := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte); ok {
		p.tok.KID = string(kid)
	}
	if alg, err := msg.Headers.Protected.Algorithm(); err == nil {
		p.tok.Alg = alg.String()
	}
	return p, nil
}

// decodeClaims reads the CWT claims with exact types. Unknown claims are
// allowed (CWT is extensible) but must have int or text labels.
func (p *pg1) decodeClaims(payload []byte) error {
	if len(payload) == 0 || payload[0]>>5 != 5 {
		return errorf(Malformed, "PG1 payload is not a CBOR map")
	}
	var m map[any]cbor.RawMessage
	if err := claimsDecMode.Unmarshal(payload, &m); err != nil {
		return errorf(Malformed, "PG1 claims: %v", err)
	}
	t := p.tok
	have := map[string]bool{}
	for k, raw := range m {
		var name string
		switch k := k.(type) {
		case int64:
			switch k {
			case claimIss:
				name = "iss"
			case claimSub:
				name = "sub"
			case claimExp:
				name = "exp"
			case claimNbf:
				name = "nbf"
			case claimIat:
				name = "iat"
			case claimCti:
				name = "cti"
			default:
				continue
			}
		case uint64:
			continue // a label above MaxInt64 names no claim we know
		case string:
			name = k
		default:
			return errorf(Malformed, "PG1 claims: label of type %T, want int or text", k)
		}
		var err error
		switch name {
		case "iss":
			t.Issuer, err = claimText(name, raw)
		case "sub":
			t.Subject, err = claimText(name, raw)
		case "exp":
			t.ExpiresAt, err = claimTime(name, raw)
		case "nbf":
			t.NotBefore, err = claimTime(name, raw)
		case "iat":
			t.IssuedAt, err = claimTime(name, raw)
		case "cti":
			p.cti, err = claimBytes(name, raw, 8, 32)
			t.TokenID = hex.EncodeToString(p.cti)
		case "dv":
			var dv []byte
			dv, err = claimBytes(name, raw, 1, 64)
			t.DeviceID = hex.EncodeToString(dv)
		case "ds":
			t.DeviceSince, err = claimTime(name, raw)
		case "as":
			t.AccountSince, err = claimTime(name, raw)
		case "ta":
			t.TopUpAt, err = claimTime(name, raw)
		case "tm":
			t.TopUpAmount, err = claimInt(name, raw)
			if err == nil && t.TopUpAmount < 0 {
				err = errorf(Malformed, "PG1 claim tm is negative")
			}
		case "fl":
			t.ForeignLogin, err = claimBool(name, raw)
		default:
			continue
		}
		if err != nil {
			return err
		}
		have[name] = true
	}
	for _, req := range []string{"iss", "sub", "iat", "exp", "cti"} {
		if !have[req] {
			return errorf(Malformed, "PG1 claims: required claim %s is missing", req)
		}
	}
	if t.Issuer == "" || t.Subject == "" {
		return errorf(Malformed, "PG1 claims: iss and sub must not be empty")
	}
	return nil
}

// The claim readers check the CBOR major type before decoding, because the
// decoder would otherwise accept null for any type.
func claimText(name string, raw cbor.RawMessage) (string, error) {
	if raw[0]>>5 != 3 {
		return "", errorf(Malformed, "PG1 claim %s must be a text string", name)
	}
	var s string
	if err := claimsDecMode.Unmarshal(raw, &s); err != nil {
		return "", errorf(Malformed, "PG1 claim %s: %v", name, err)
	}
	return s, nil
}

func claimBytes(name string, raw cbor.RawMessage, minLen, maxLen int) ([]byte, error) {
	if raw[0]>>5 != 2 {
		return nil, errorf(Malformed, "PG1 claim %s must be a byte string", name)
	}
	var b []byte
	if err := claimsDecMode.Unmarshal(raw, &b); err != nil {
		return nil, errorf(Malformed, "PG1 claim %s: %v", name, err)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, errorf(Malformed, "PG1 claim %s is %d bytes, want %d to %d", name, len(b), minLen, maxLen)
	}
	return b, nil
}

func claimInt(name string, raw cbor.RawMessage) (int64, error) {
	if mt := raw[0] >> 5; mt != 0 && mt != 1 {
		return 0, errorf(Malformed, "PG1 claim %s must be an integer", name)
	}
	var n int64
	if err := claimsDecMode.Unmarshal(raw, &n); err != nil {
		return 0, errorf(Malformed, "PG1 claim %s: %v", name, err)
	}
	return n, nil
}

// maxUnix keeps times inside what time.Time and JSON handle (year 9999).
const maxUnix = 253402300799

func claimTime(name string, raw cbor.RawMessage) (time.Time, error) {
	n, err := claimInt(name, raw)
	if err != nil {
		return time.Time{}, err
	}
	if n < 0 || n > maxUnix {
		return time.Time{}, errorf(Malformed, "PG1 claim %s = %d is not a plausible unix time", name, n)
	}
	return time.Unix(n, 0).UTC(), nil
}

func claimBool(name string, raw cbor.RawMessage) (bool, error) {
	switch raw[0] {
	case 0xF4:
		return false, nil
	case 0xF5:
		return true, nil
	}
	return false, errorf(Malformed, "PG1 claim %s must be true or false", name)
}

func parseAlg(name string) (cose.Algorithm, error) {
	switch name {
	case "EdDSA":
		return cose.AlgorithmEdDSA, nil
	case "ES256":
		return cose.AlgorithmES256, nil
	}
	return 0, fmt.Errorf("algorithm %q is not EdDSA or ES256", name)
}

func (v *Verifier) verifyPG1(text []byte, now time.Time, ledger Ledger) (*Token, error) {
	p, err := decodePG1(text)
	if err != nil {
		return nil, err
	}
	t, h := p.tok, p.msg.Headers
	keys, ok := v.issuers[t.Issuer]
	if !ok {
		return nil, errorf(UnknownIssuer, "issuer %q is not in the policy", t.Issuer)
	}
	kidRaw, inProt := h.Protected[cose.HeaderLabelKeyID]
	kid, isBytes := kidRaw.([]byte)
	if !inProt || !isBytes {
		if _, inUnprot := h.Unprotected[cose.HeaderLabelKeyID]; inUnprot {
			return nil, errorf(UnknownKey, "kid is in the unprotected header; it must be protected")
		}
		return nil, errorf(UnknownKey, "no kid byte string in the protected header")
	}
	key, ok := keys[string(kid)]
	if !ok {
		return nil, errorf(UnknownKey, "issuer %q has no key %q", t.Issuer, kid)
	}
	if key.err != nil {
		return nil, errorf(UnknownKey, "the policy's %v", key.err)
	}
	if _, ok := h.Unprotected[cose.HeaderLabelAlgorithm]; ok {
		return nil, errorf(AlgMismatch, "alg in the unprotected header is not allowed")
	}
	alg, err := h.Protected.Algorithm()
	switch {
	case errors.Is(err, cose.ErrAlgorithmNotFound):
		return nil, errorf(AlgMismatch, "no alg in the protected header")
	case err != nil:
		return nil, errorf(AlgMismatch, "alg %v is not allowed", h.Protected[cose.HeaderLabelAlgorithm])
	case alg != key.alg:
		return nil, errorf(AlgMismatch, "alg %v is not key %q's %v", alg, kid, key.alg)
	}
	if !key.notAfter.IsZero() && now.After(key.notAfter) {
		return nil, errorf(Expired, "key %q was retired at %s", kid, key.notAfter.UTC().Format(time.RFC3339))
	}
	if err := p.msg.Verify(nil, key.verifier); err != nil {
		return nil, errorf(BadSignature, "signature does not verify with key %q", kid)
	}
	// From here on the claims are the issuer's, so the token goes back with
	// every refusal and the agent can record the account.
	t.Account = t.Subject
	t.ReplayKey = "pg1:" + t.TokenID
	switch {
	case now.After(t.ExpiresAt.Add(v.skew)):
		return t, errorf(Expired, "token expired at %s", t.ExpiresAt.Format(time.RFC3339))
	case t.IssuedAt.After(now.Add(v.skew)):
		return t, errorf(NotYetValid, "token issued at %s, in the future", t.IssuedAt.Format(time.RFC3339))
	case !t.NotBefore.IsZero() && t.NotBefore.After(now.Add(v.skew)):
		return t, errorf(NotYetValid, "token not valid before %s", t.NotBefore.Format(time.RFC3339))
	case v.maxAge > 0 && now.Sub(t.IssuedAt) > v.maxAge+v.skew:
		return t, errorf(TooOld, "token issued %s ago, more than the maximum age %s", now.Sub(t.IssuedAt).Truncate(time.Second), v.maxAge)
	case ledger != nil && ledger.Seen(t.ReplayKey):
		return t, errorf(Replayed, "token %s was already used", t.TokenID)
	}
	return t, nil
}

// Claims are what Mint signs into a PG1 token. Zero times are left out,
// except IssuedAt and ExpiresAt which are required.
type Claims struct {
	Issuer       string
	Subject      string
	IssuedAt     time.Time
	ExpiresAt    time.Time
	ID           []byte // cti; 16 random bytes when empty
	DeviceID     []byte
	DeviceSince  time.Time
	AccountSince time.Time
	TopUpAt      time.Time
	TopUpAmount  int64
	ForeignLogin bool
}

// Mint signs claims into a PG1 token text with key (ed25519 for EdDSA,
// ECDSA P-256 for ES256), naming kid in the protected header.
func Mint(key crypto.Signer, alg, kid string, c Claims) (string, error) {
	a, err := parseAlg(alg)
	if err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	signer, err := cose.NewSigner(a, key)
	if err != nil {
		return "", fmt.Errorf("mint: %s signer: %w", alg, err)
	}
	if c.Issuer == "" || c.Subject == "" || c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
		return "", errors.New("mint: issuer, subject, issued-at and expiry are required")
	}
	cti := c.ID
	if len(cti) == 0 {
		cti = make([]byte, 16)
		if _, err := rand.Read(cti); err != nil {
			return "", fmt.Errorf("mint: token id: %w", err)
		}
	}
	m := map[any]any{
		claimIss: c.Issuer,
		claimSub: c.Subject,
		claimIat: c.IssuedAt.Unix(),
		claimExp: c.ExpiresAt.Unix(),
		claimCti: cti,
	}
	if len(c.DeviceID) > 0 {
		m["dv"] = c.DeviceID
	}
	for name, at := range map[string]time.Time{"ds": c.DeviceSince, "as": c.AccountSince, "ta": c.TopUpAt} {
		if !at.IsZero() {
			m[name] = at.Unix()
		}
	}
	if c.TopUpAmount != 0 {
		m["tm"] = c.TopUpAmount
	}
	if c.ForeignLogin {
		m["fl"] = true
	}
	payload, err := claimsEncMode.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("mint: encode claims: %w", err)
	}
	msg := cose.Sign1Message{
		Headers: cose.Headers{
			Protected: cose.ProtectedHeader{
				cose.HeaderLabelAlgorithm: a,
				cose.HeaderLabelKeyID:     []byte(kid),
			},
			Unprotected: cose.UnprotectedHeader{},
		},
		Payload: payload,
	}
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		return "", fmt.Errorf("mint: sign: %w", err)
	}
	raw, err := msg.MarshalCBOR()
	if err != nil {
		return "", fmt.Errorf("mint: encode COSE_Sign1: %w", err)
	}
	text := PG1Prefix + Base45Encode(raw)
	if len(text) > MaxTextLen {
		return "", fmt.Errorf("mint: token is %d bytes, more than %d", len(text), MaxTextLen)
	}
	return text, nil
}
