package agent_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/internal/golden"
)

// The JSON a POS integrating over HTTP reads is a contract: decide and
// status responses are compared with golden files, with the ids and times
// that differ on every run replaced by placeholders.
func TestResponsesGolden(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC().Truncate(time.Second)
	r := start(t, f.config(""), agent.Options{Now: func() time.Time { return now }, Version: "v1.0.0"})
	tok := f.mint("golden", func(c *claims) {
		c.IssuedAt, c.ExpiresAt = now.Add(-time.Second), now.Add(5*time.Minute)
		c.TopUpAt, c.TopUpAmount = now.Add(-20*time.Minute), 30000
	})
	var decide, status map[string]any
	body, _ := json.Marshal(agent.DecideRequest{Lines: []agent.CartLine{line(carton, 2), line(coffee, 1)}, Token: tok})
	r.do(t, "POST", "/v1/decide", body, &decide)
	r.do(t, "GET", "/v1/status", nil, &status)
	for name, v := range map[string]map[string]any{"decide-review": decide, "status": status} {
		t.Run(name, func(t *testing.T) {
			golden.CheckJSON(t, filepath.Join("testdata", name+".golden.json"), normalize(v, now))
		})
	}
}

// normalize replaces run-specific values (ids, times) by placeholders.
func normalize(v any, now time.Time) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch k {
			case "saleId", "reviewId", "eventId":
				x[k] = "<" + k + ">"
			default:
				x[k] = normalize(e, now)
			}
		}
		return x
	case []any:
		for i := range x {
			x[i] = normalize(x[i], now)
		}
		return x
	case string:
		// Times near the run's clock are relative; fixed ones (the
		// policy's expiry) stay as they are.
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil && t.Sub(now).Abs() < 24*time.Hour {
			return "<now" + signed(t.Sub(now)) + ">"
		}
	}
	return v
}

func signed(d time.Duration) string {
	if d == 0 {
		return ""
	}
	if d > 0 {
		return "+" + d.String()
	}
	return d.String()
}
