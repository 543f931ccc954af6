// Package webassets holds the third-party browser code posguard's pages
// use, vendored and embedded so that no page loads anything from the
// network at run time: a backtest report opened from a laptop's disk and
// the HQ console behind a firewall draw the same charts.
//
// Chart.js 4.6.1 (MIT, LICENSE.chartjs.md) is dist/chart.umd.min.js of the
// npm package, byte for byte; update it with
//
//	cd /tmp && npm pack chart.js@4 && tar xzf chart.js-*.tgz
//	cp package/dist/chart.umd.min.js package/LICENSE.md (as LICENSE.chartjs.md) here
//
// and set ChartJSVersion and ChartJSSHA256 to match (the test checks both).
package webassets

import (
	"bytes"
	_ "embed"
)

// ChartJSVersion is the version of the embedded Chart.js.
const ChartJSVersion = "4.6.1"

// ChartJSSHA256 is the SHA-256 of chart.umd.min.js as the npm registry
// serves it in chart.js-4.6.1.tgz.
const ChartJSSHA256 = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"

//go:embed chart.umd.min.js
var chartJS []byte

//go:embed LICENSE.chartjs.md
var chartJSLicense string

// ChartJS returns the Chart.js UMD bundle, which defines the global
// `Chart`. The slice is shared: do not modify it.
func ChartJS() []byte { return chartJS }

// ChartJSInline returns the bundle for a page that inlines it in a
// <script> element: without the trailing sourceMappingURL comment, which
// would point the browser's developer tools at a map that is not there.
func ChartJSInline() string {
	js := chartJS
	if i := bytes.LastIndex(js, []byte("\n//# sourceMappingURL=")); i >= 0 {
		js = js[:i+1]
	}
	return string(js)
}

// ChartJSLicense returns Chart.js's MIT licence text, which must travel
// with any page or binary that carries the code.
func ChartJSLicense() string { return chartJSLicense }
