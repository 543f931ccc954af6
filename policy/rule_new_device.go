package policy

import "github.com/posguard/posguard/policy/sale"

// KindNewDevice fires when the token says its device was bound to the
// account less than within before the sale.
const KindNewDevice = "new_device"

var newDeviceKind = ruleKind{
	fields: []string{"within"},
	check: func(c *ruleCheck) {
		c.positive("within", c.r.Within)
	},
	eval: func(e *evaluation, r *Rule) {
		e.claimTooRecent(r, e.req.Payment.DeviceSince, r.Within.D(), durText(r.withinText, r.Within), "device bound", sale.CodeNewDevice)
	},
}
