// Package scan holds what every scanner link produces: a Scan, and the
// symbologies a register cares about.
package scan

import "time"

// Symbology is the barcode type of a scan.
type Symbology string

const (
	Unknown    Symbology = "unknown"
	EAN13      Symbology = "ean13" // also JAN and UPC-A carried as EAN-13
	EAN8       Symbology = "ean8"
	UPCA       Symbology = "upca"
	ITF14      Symbology = "itf14"
	GS1128     Symbology = "gs1-128"
	Code128    Symbology = "code128"
	QR         Symbology = "qr"
	DataMatrix Symbology = "datamatrix"
)

// Scan is one decoded barcode as read from a scanner.
type Scan struct {
	Data      []byte
	Symbology Symbology
	At        time.Time
}
