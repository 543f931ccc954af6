package webassets

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// The embedded file is the one the npm registry serves, and the constants
// describe it: a changed or truncated copy fails here, not in a browser.
func TestChartJSIsTheVendoredRelease(t *testing.T) {
	sum := sha256.Sum256(ChartJS())
	if got := hex.EncodeToString(sum[:]); got != ChartJSSHA256 {
		t.Errorf("chart.umd.min.js has SHA-256 %s, want %s (ChartJSSHA256)", got, ChartJSSHA256)
	}
	if head := string(ChartJS()[:200]); !strings.Contains(head, "Chart.js v"+ChartJSVersion) {
		t.Errorf("chart.umd.min.js does not start with the Chart.js v%s banner: %q", ChartJSVersion, head)
	}
	if !strings.Contains(ChartJSLicense(), "MIT License") || !strings.Contains(ChartJSLicense(), "Chart.js Contributors") {
		t.Error("the licence is not Chart.js's MIT licence")
	}
}

func TestChartJSInline(t *testing.T) {
	js := ChartJSInline()
	if strings.Contains(js, "sourceMappingURL") {
		t.Error("the inline bundle still names a source map")
	}
	if !strings.HasSuffix(js, "}));\n") || len(js) < len(ChartJS())-64 {
		t.Errorf("the inline bundle lost more than its source map comment: ends %q", js[len(js)-40:])
	}
	// Inlined in a <script> element, "</script" would end it early.
	if strings.Contains(strings.ToLower(js), "</script") {
		t.Error("the bundle contains </script and cannot be inlined as is")
	}
}
