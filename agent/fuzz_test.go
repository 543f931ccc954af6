package agent_test

import (
	"encoding/json"
	"testing"

	"github.com/posguard/posguard/agent"
)

// FuzzParseDecideRequest: the decide body parser never panics, every
// rejection says why, and what it accepts is valid and round-trips.
func FuzzParseDecideRequest(f *testing.F) {
	f.Add([]byte(`{"lines":[{"jan":"4901234200012","quantity":2}],"token":"PG1:6BFOXN"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := agent.ParseDecideRequest(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("accepted an invalid request: %v", err)
		}
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		q2, err := agent.ParseDecideRequest(b)
		if err != nil || len(q2.Lines) != len(q.Lines) || q2.Token != q.Token {
			t.Fatalf("round trip: %+v, %v", q2, err)
		}
	})
}
