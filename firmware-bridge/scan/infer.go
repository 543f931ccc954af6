package scan

import "bytes"

// Infer guesses the symbology of a frame that came without an AIM
// identifier. Item codes are recognised only when their GS1 check digit is
// valid, so a mistyped or truncated number never becomes a product; payment
// tokens and anything else textual are treated as QR, the only 2D code a
// register reads from a customer's phone.
func Infer(data []byte) Symbology {
	if len(data) == 0 {
		return Unknown
	}
	if bytes.HasPrefix(data, []byte("PG1:")) {
		return QR
	}
	if allDigits(data) {
		switch len(data) {
		case 8:
			if ValidGTIN(data) {
				return EAN8
			}
		case 12:
			if ValidGTIN(data) {
				return UPCA
			}
		case 13:
			if ValidGTIN(data) {
				return EAN13
			}
		case 14:
			if ValidGTIN(data) {
				return ITF14
			}
		}
		// Long numeric strings are the one-time codes of other wallets,
		// shown as QR on the phone.
		if len(data) > 14 {
			return QR
		}
		return Unknown
	}
	// GS1-128 as transmitted by scanners starts with FNC1 mapped to GS
	// (0x1D) or with an application identifier in brackets.
	if data[0] == 0x1D || data[0] == '(' && bytes.IndexByte(data, ')') > 1 {
		return GS1128
	}
	return QR
}

// ValidGTIN reports whether digits is a GTIN-8/12/13/14 whose last digit is
// the GS1 mod-10 check digit (weights 3,1,3,... from the right, check digit
// excluded).
func ValidGTIN(digits []byte) bool {
	n := len(digits)
	if n < 2 || !allDigits(digits) {
		return false
	}
	sum := 0
	for i := n - 2; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (n-2-i)%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return (10-sum%10)%10 == int(digits[n-1]-'0')
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
