// Package aim maps AIM symbology identifiers (ISO/IEC 15424: "]" + code
// character + modifier) to symbologies and back, for scanners and POS
// systems that prefix each barcode with one.
package aim

import "github.com/posguard/posguard/firmware-bridge/scan"

// byID is the precompiled table of the identifiers a register meets. ]E0
// covers EAN-13 and UPC-A (a UPC-A is sent as its 13-digit EAN form).
var byID = map[string]scan.Symbology{
	"]E0": scan.EAN13,
	"]E3": scan.EAN13, // EAN-13/UPC with add-on
	"]E4": scan.EAN8,
	"]I0": scan.ITF14,
	"]I1": scan.ITF14,
	"]C0": scan.Code128,
	"]C1": scan.GS1128,
	"]Q0": scan.QR,
	"]Q1": scan.QR,
	"]Q3": scan.QR, // GS1 QR
	"]d1": scan.DataMatrix,
	"]d2": scan.DataMatrix, // GS1 DataMatrix
}

// toID is the identifier emitted for each symbology on output.
var toID = map[scan.Symbology]string{
	scan.EAN13:      "]E0",
	scan.UPCA:       "]E0",
	scan.EAN8:       "]E4",
	scan.ITF14:      "]I1",
	scan.Code128:    "]C0",
	scan.GS1128:     "]C1",
	scan.QR:         "]Q1",
	scan.DataMatrix: "]d2",
}

// Len is the length of an AIM identifier.
const Len = 3

// Lookup maps an identifier to its symbology. Identifiers with the right
// shape but not in the table map to scan.Unknown with ok true, so the
// caller still strips them.
func Lookup(id []byte) (sym scan.Symbology, ok bool) {
	if len(id) != Len || id[0] != ']' {
		return scan.Unknown, false
	}
	if s, found := byID[string(id)]; found {
		return s, true
	}
	return scan.Unknown, true
}

// ID is the identifier to send for sym; ]X0 ("other") for symbologies
// without one of their own.
func ID(sym scan.Symbology) string {
	if id, ok := toID[sym]; ok {
		return id
	}
	return "]X0"
}
