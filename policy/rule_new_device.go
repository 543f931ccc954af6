package policy

// KindNewDevice fires when the token says its device was bound to the
// account less than within before the sale.
const KindNewDevice = "new_device"

var newDeviceKind = ruleKind{
	fields: []string{"within"},
	check: func(c *ruleCheck) {
		c.positive("within", c.r.Within)
	},
	eval: evalNewDevice,
}

func evalNewDevice(e *evaluation, r *Rule) {
	since := e.req.Payment.DeviceSince
	if since.IsZero() || !e.applies(r) {
		return
	}
	if age := clampAge(e.req.At.Sub(since)); age < r.Within.D() {
		e.fire(r.ID, r.Action, r.Mode, "device bound "+span(age)+" before the sale < minimum "+r.Within.D().String())
	}
}
