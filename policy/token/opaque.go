package token

// matchOpaque recognises another wallet's one-time code by the policy's
// patterns, first match wins. The code itself is only kept as a keyed hash:
// it is a bearer credential until used.
func (v *Verifier) matchOpaque(text []byte) *Token {
	for _, w := range v.opaque {
		if (w.min > 0 && len(text) < w.min) || (w.max > 0 && len(text) > w.max) {
			continue
		}
		if !w.re.Match(text) {
			continue
		}
		h := v.keyedHash("opaque", text)
		return &Token{Kind: KindOpaque, Wallet: w.name, Account: w.name + ":" + h, ReplayKey: "opaque:" + h}
	}
	return nil
}
