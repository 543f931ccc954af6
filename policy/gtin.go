package policy

import "fmt"

// checkGTIN validates an EAN-8, UPC-A, EAN-13/JAN or GTIN-14 code: digits
// only, one of those lengths, and the GS1 mod-10 check digit. The error says
// which digit was expected so a typo in the catalog is easy to fix.
func checkGTIN(code string) error {
	switch len(code) {
	case 8, 12, 13, 14:
	default:
		return fmt.Errorf("length %d is not a GTIN length (8, 12, 13 or 14 digits)", len(code))
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return fmt.Errorf("character %q at position %d is not a digit", code[i], i+1)
		}
	}
	want := gtinCheckDigit(code[:len(code)-1])
	if got := int(code[len(code)-1] - '0'); got != want {
		return fmt.Errorf("check digit is %d, not %d", want, got)
	}
	return nil
}

// gtinCheckDigit computes the GS1 check digit of the digits before it:
// weights 3,1,3,… from the right.
func gtinCheckDigit(body string) int {
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// yen formats an amount as "¥90,400"; reasons are read by clerks and
// managers, so thousands separators matter.
func yen(v int64) string { return string(appendYen(nil, v)) }
