package agent

import (
	"testing"

	"github.com/posguard/posguard/policy"
)

// The cart stops counting one past the policy's bounds: enough for the
// sale to be refused, never enough to wrap or to grow without end.
func TestCartBounds(t *testing.T) {
	var c cart
	for range policy.MaxLineQuantity + 50 {
		c.add("4901234000100")
	}
	if len(c.lines) != 1 || c.lines[0].Quantity != policy.MaxLineQuantity+1 || c.overfull != "" {
		t.Fatalf("after %d scans of one item: %+v %q", policy.MaxLineQuantity+50, c.lines, c.overfull)
	}
	for i := range policy.MaxLines + 10 {
		c.add(string(rune('a'+i%26)) + string(rune(i)))
	}
	if len(c.lines) != policy.MaxLines || c.overfull == "" {
		t.Fatalf("lines %d, overfull %q; want %d and a reason", len(c.lines), c.overfull, policy.MaxLines)
	}
	c.reset()
	if c.lines != nil || c.overfull != "" {
		t.Fatalf("reset left %+v %q", c.lines, c.overfull)
	}
}
