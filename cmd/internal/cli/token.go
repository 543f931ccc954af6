package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/policy/token"
)

// PolicyKeygen is "policy keygen".
var PolicyKeygen = Command{"keygen", "make a signing key pair and its policy issuers snippet", runPolicyKeygen}

// TokenMint is "token mint".
var TokenMint = Command{"mint", "sign a PG1 payment token", runTokenMint}

// TokenInspect is "token inspect".
var TokenInspect = Command{"inspect", "decode (and with --policy verify) any payment token", runTokenInspect}

// TokenQR is "token qr".
var TokenQR = Command{"qr", "render a token as a QR code (PNG or terminal)", runTokenQR}

// ParseInterspersed parses flags that may come before or after the
// positional arguments ("token qr TEXT --png out.png"); "--" ends flags.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := ParseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func runPolicyKeygen(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "policy keygen", "", `
Make a signing key pair. Writes, in --out, KID.key (the private key, PEM
PKCS#8, mode 0600, never overwritten) and KID.pub.pem, and prints the
configuration snippet that trusts the key. Two uses:

  --use wallet (default): a wallet backend's PG1 token key. Also writes
      KID.issuer.yaml; the snippet goes under the policy's tokens: section
      (tokens.issuers), so registers verify the tokens it signs. Keep
      KID.key on the wallet backend ('posguard token mint --key' for tests).

      posguard policy keygen --issuer posguard-wallet --kid w-2026 --out keys

  --use hq: HQ's bundle-signing key, for 'posguard policy sign/push --key'
      and 'posguard hq --denylist-key'. The snippet goes in every agent's
      configuration (policy.trustedKeys); copy KID.pub.pem to the registers
      and keep KID.key on HQ.

      posguard policy keygen --use hq --kid hq-1 --out keys`)
	use := fs.String("use", "wallet", "what the key signs: wallet (PG1 payment tokens) or hq (policy and denylist bundles)")
	iss := fs.String("issuer", "", "with --use wallet: issuer name, the tokens' iss claim (required)")
	kid := fs.String("kid", "", "key id, the COSE kid and the file name stem (required)")
	alg := fs.String("alg", "EdDSA", "signature algorithm: EdDSA (Ed25519) or ES256 (ECDSA P-256)")
	out := fs.String("out", "", "directory for the key files (required)")
	pos, err := ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return Usagef("unexpected argument %q", pos[0])
	case *use != "wallet" && *use != "hq":
		return Usagef("--use must be wallet or hq, not %q", *use)
	case *use == "hq" && *iss != "":
		return Usagef("--issuer names a wallet; an HQ key (--use hq) has none")
	case *use == "wallet" && *iss == "":
		return Usagef("--issuer is required with --use wallet (the default); for HQ's bundle-signing key use --use hq")
	case *kid == "" || *out == "":
		return Usagef("--kid and --out are required")
	case *alg != "EdDSA" && *alg != "ES256":
		return Usagef("--alg must be EdDSA or ES256, not %q", *alg)
	}
	if *use == "hq" {
		files, _, err := token.WriteKeyPair(*out, *kid, *alg)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		fmt.Fprintf(std.Err, "wrote %s (private, 0600: keep it on HQ), %s; trust it in each agent's configuration:\n", files.Private, files.Public)
		_, err = fmt.Fprintf(std.Out, "policy:\n  trustedKeys:\n    - {kid: %s, file: %s}\n", *kid, files.Public)
		return err
	}
	files, snippet, err := token.WriteKeyFiles(*out, *iss, *kid, *alg)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(std.Err, "wrote %s (private, 0600: keep it on the wallet backend), %s, %s; paste this under the policy's tokens:\n",
		files.Private, files.Public, files.Issuer)
	_, err = std.Out.Write(snippet)
	return err
}

// ParseWhen reads a time flag: RFC 3339, or a duration meaning that long
// before now ("90m" = an hour and a half ago).
func ParseWhen(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, Usagef("--%s %q: want an RFC 3339 time or a duration ago like 30m", name, s)
	}
	return now.Add(-d), nil
}

func runTokenMint(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "token mint", "", `
Sign a PG1 payment token with an issuer key made by 'posguard policy keygen'
and print its text (PG1:...). Times are RFC 3339 or a duration ago ("45m").`)
	keyPath := fs.String("key", "", "private key file KID.key (required)")
	kid := fs.String("kid", "", "key id (default: the key file name without .key)")
	iss := fs.String("issuer", "", "issuer, the iss claim (required)")
	sub := fs.String("sub", "", "account pseudonym, the sub claim (required)")
	ttl := fs.Duration("ttl", 60*time.Second, "validity from issue to expiry")
	at := fs.String("at", "", "issue time (default: now)")
	topupAt := fs.String("topup-at", "", "last top-up time, the ta claim")
	topupAmount := fs.Int64("topup-amount", 0, "last top-up amount in yen, the tm claim")
	deviceSince := fs.String("device-since", "", "time the device was bound to the account, the ds claim")
	accountSince := fs.String("account-since", "", "account creation time, the as claim")
	device := fs.String("device", "", "device id hash in hex, the dv claim")
	foreign := fs.Bool("foreign-login", false, "the account logged in from abroad in the last 24 h (fl claim)")
	pos, err := ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return Usagef("unexpected argument %q", pos[0])
	}
	if *keyPath == "" || *iss == "" || *sub == "" {
		return Usagef("--key, --issuer and --sub are required")
	}
	if *ttl <= 0 {
		return Usagef("--ttl must be > 0")
	}
	now := std.Clock()
	c := token.Claims{Issuer: *iss, Subject: *sub, TopUpAmount: *topupAmount, ForeignLogin: *foreign}
	if c.IssuedAt, err = ParseWhen("at", *at, now); err != nil {
		return err
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	c.ExpiresAt = c.IssuedAt.Add(*ttl)
	for _, f := range []struct {
		name, val string
		dst       *time.Time
	}{{"topup-at", *topupAt, &c.TopUpAt}, {"device-since", *deviceSince, &c.DeviceSince}, {"account-since", *accountSince, &c.AccountSince}} {
		if *f.dst, err = ParseWhen(f.name, f.val, now); err != nil {
			return err
		}
	}
	if *device != "" {
		if c.DeviceID, err = hex.DecodeString(*device); err != nil {
			return Usagef("--device %q is not hex", *device)
		}
	}
	key, alg, err := keyfile.Load(*keyPath)
	if err != nil {
		return err
	}
	if *kid == "" {
		*kid = strings.TrimSuffix(filepath.Base(*keyPath), ".key")
	}
	text, err := token.Mint(key, alg, *kid, c)
	if err != nil {
		return err
	}
	fmt.Fprintln(std.Out, text)
	return nil
}

// readText takes the token text from the argument, or stdin for "-".
func readText(std Stdio, pos []string) ([]byte, error) {
	if len(pos) != 1 {
		return nil, Usagef("want exactly one TEXT argument (or - for stdin), got %d", len(pos))
	}
	if pos[0] != "-" {
		return []byte(pos[0]), nil
	}
	b, err := io.ReadAll(io.LimitReader(std.In, token.MaxTextLen+2))
	if err != nil {
		return nil, fmt.Errorf("read token from stdin: %w", err)
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// inspectResult is the --json output; the fields are documented in
// `token inspect -h`.
type inspectResult struct {
	Kind       token.Kind `json:"kind"`
	WellFormed bool       `json:"wellFormed"`
	Verified   bool       `json:"verified"`
	// Valid is left out unless Verified: a token nobody checked is
	// neither valid nor invalid.
	Valid  *bool        `json:"valid,omitempty"`
	Reason token.Reason `json:"reason"`
	Claims *token.Token `json:"claims"`
	TLV    []token.TLV  `json:"tlv,omitempty"`
}

func runTokenInspect(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "token inspect", "TEXT|-", `
Decode a payment token of any kind (PG1, EMV CPM, opaque) and show its
claims; EMV payloads also show their TLV tree, with the PAN masked to its
last four digits. Without --policy nothing is verified: the token is only
decoded, and opaque codes need the policy's patterns to be recognised.
With --policy the token is verified as a register would (signature,
issuer, expiry, claims), except for replays (inspect has no ledger).
Exit 1 when the token is malformed or, with --policy, not valid.
Quote TEXT: PG1 text is base45, whose alphabet includes the space.

--json prints one object:
  kind        pg1 | emv-cpm | opaque | unknown
  wellFormed  true when the text decoded as a token of that kind
  verified    true only with --policy: signature and claims were checked
  valid       only when verified: true when the token passed every check
  reason      why it failed ("" when it did not): malformed, unknown,
              bad_signature, expired, ...
  claims      the decoded claims (null when it did not decode)
  tlv         EMV payloads: the TLV tree, PAN masked`)
	policyPath := fs.String("policy", "", "policy file whose tokens section verifies the token")
	asJSON := fs.Bool("json", false, `print {"kind","wellFormed","verified"[,"valid"],"reason","claims"[,"tlv"]} as JSON`)
	keyPath := fs.String("account-key", "", "file holding the chain's account hash secret (with --policy; default: empty key)")
	at := fs.String("at", "", "verify as of this RFC 3339 time (default: now)")
	pos, err := ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	text, err := readText(std, pos)
	if err != nil {
		return err
	}
	now := std.Clock()
	if *at != "" {
		if now, err = time.Parse(time.RFC3339, *at); err != nil {
			return Usagef("--at %q is not an RFC 3339 time", *at)
		}
	}
	var tok *token.Token
	var verr error
	if *policyPath != "" {
		p, err := policy.LoadFile(*policyPath)
		if err != nil {
			return err
		}
		var secret []byte
		if *keyPath != "" {
			if secret, err = os.ReadFile(*keyPath); err != nil {
				return fmt.Errorf("read account key: %w", err)
			}
			secret = bytes.TrimSpace(secret)
		}
		tok, verr = token.NewVerifier(&p.Tokens, secret).Verify(text, now, nil)
	} else {
		tok, verr = token.Decode(text)
		if verr == nil && tok.Kind == token.KindUnknown {
			verr = &token.Error{Reason: token.Unknown, Msg: "text is no PG1 token or EMV QR (opaque codes need --policy)"}
		}
	}
	verified := *policyPath != ""
	reason := token.ReasonOf(verr)
	res := inspectResult{Kind: token.Classify(text), WellFormed: reason != token.Malformed && reason != token.Unknown, Verified: verified, Reason: token.ReasonOf(verr), Claims: tok}
	if verified {
		valid := verr == nil
		res.Valid = &valid
	}
	if tok != nil {
		res.Kind, res.TLV = tok.Kind, tok.TLV
	}
	if *asJSON {
		enc := json.NewEncoder(std.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
		if verr != nil {
			fmt.Fprintf(std.Err, "%s token inspect: %v\n", std.Prog(), verr)
		}
	} else {
		printInspect(std.Out, res, verr, verified)
	}
	if verr != nil {
		return &ExitError{Code: 1}
	}
	return nil
}

func printInspect(w io.Writer, r inspectResult, verr error, verified bool) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "kind:       %s\n", r.Kind)
	switch {
	case verr != nil:
		fmt.Fprintf(bw, "valid:      no — %v\n", verr)
	case verified:
		fmt.Fprintln(bw, "valid:      yes (verified with the policy)")
	default:
		fmt.Fprintln(bw, "valid:      well-formed, NOT verified (no --policy)")
	}
	if r.Claims != nil {
		var m map[string]any
		b, _ := json.Marshal(r.Claims)
		_ = json.Unmarshal(b, &m)
		delete(m, "kind")
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(bw, "%-11s %v\n", k+":", m[k])
		}
	}
	if len(r.TLV) > 0 {
		fmt.Fprintln(bw, "tlv:")
		printTLV(bw, r.TLV, "  ")
	}
}

func printTLV(w io.Writer, objs []token.TLV, indent string) {
	for _, o := range objs {
		if o.Children != nil {
			fmt.Fprintf(w, "%s%s\n", indent, o.Tag)
			printTLV(w, o.Children, indent+"  ")
			continue
		}
		v := o.Redacted
		if v == "" {
			v = strings.ToUpper(hex.EncodeToString(o.Value))
		}
		fmt.Fprintf(w, "%s%s %s\n", indent, o.Tag, v)
	}
}

func runTokenQR(ctx context.Context, std Stdio, args []string) error {
	fs := NewFlags(std, "token qr", "TEXT|-", `
Render a token as a QR code: a PNG with --png, otherwise drawn in the
terminal with half-block characters and a quiet zone, white on black
regardless of the terminal's colours, so a phone camera or a register's
scanner can read it off the screen.`)
	png := fs.String("png", "", "write a PNG image to this file instead of drawing in the terminal")
	size := fs.Int("size", 384, "PNG width and height in pixels (grown if too small for the code)")
	plain := fs.Bool("plain", false, "no colour escapes: light blocks on the terminal's own dark background")
	invert := fs.Bool("invert", false, "with --plain: draw dark modules, for light-background terminals and paper")
	pos, err := ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	text, err := readText(std, pos)
	if err != nil {
		return err
	}
	if *size <= 0 {
		return Usagef("--size must be > 0")
	}
	q, err := qrcode.New(string(text), qrcode.Medium)
	if err != nil {
		return fmt.Errorf("encode QR: %w", err)
	}
	if *png != "" {
		if err := q.WriteFile(*size, *png); err != nil {
			return fmt.Errorf("write PNG: %w", err) // the *PathError names the file
		}
		return nil
	}
	// ToSmallString(false) draws light modules as blocks: right on a dark
	// background, which the escapes force unless --plain.
	art := q.ToSmallString(*plain && *invert)
	if *plain {
		_, err = io.WriteString(std.Out, art)
		return err
	}
	bw := bufio.NewWriter(std.Out)
	for _, line := range strings.SplitAfter(strings.TrimSuffix(art, "\n"), "\n") {
		fmt.Fprintf(bw, "\x1b[97;40m%s\x1b[0m\n", strings.TrimSuffix(line, "\n"))
	}
	return bw.Flush()
}
