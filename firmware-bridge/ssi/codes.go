package ssi

import "github.com/posguard/posguard/firmware-bridge/scan"

// codeSym maps DECODE_DATA code types to symbologies. Code types with
// supplements (0x4B, 0x8B, ...) carry the base type in their low six bits
// and are folded onto it by Symbology.
var codeSym = map[byte]scan.Symbology{
	CodeCode128:    scan.Code128,
	CodeI2of5:      scan.ITF14,
	CodeUPCA:       scan.UPCA,
	CodeEAN8:       scan.EAN8,
	CodeEAN13:      scan.EAN13,
	CodeGS1128:     scan.GS1128,
	CodeDataMatrix: scan.DataMatrix,
	CodeQR:         scan.QR,
	CodeGS1DM:      scan.DataMatrix,
	CodeGS1QR:      scan.QR,
}

var symCode = map[scan.Symbology]byte{
	scan.Code128:    CodeCode128,
	scan.ITF14:      CodeI2of5,
	scan.UPCA:       CodeUPCA,
	scan.EAN8:       CodeEAN8,
	scan.EAN13:      CodeEAN13,
	scan.GS1128:     CodeGS1128,
	scan.DataMatrix: CodeGS1DM,
	scan.QR:         CodeQR,
}

// Symbology maps a DECODE_DATA code type to a symbology; unknown types
// give scan.Unknown and the caller infers from the data.
func Symbology(code byte) scan.Symbology {
	if s, ok := codeSym[code]; ok {
		return s
	}
	if code < 0xC0 { // 0x40/0x80 bits mark 2- and 5-digit supplements
		if s, ok := codeSym[code&0x3F]; ok {
			return s
		}
	}
	return scan.Unknown
}

// CodeType is the DECODE_DATA code type for sym (0x00, "not applicable",
// when SSI has none).
func CodeType(sym scan.Symbology) byte { return symCode[sym] }
