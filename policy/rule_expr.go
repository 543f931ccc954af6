package policy

import (
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/posguard/posguard/policy/sale"
)

// KindExpr fires when its CEL expression (expr, boolean) is true, with
// reason as the reason. The expression is type-checked and cost-bounded at
// load (expr.go); one that fails at run time fires the rule (fail closed).
const KindExpr = "expr"

var exprKind = ruleKind{
	fields: []string{"expr", "reason", "reasonJa"},
	check:  checkExpr,
	eval:   evalExpr,
}

func checkExpr(c *ruleCheck) {
	if c.r.Expr == "" {
		c.add("expr", "is required for expr")
		return
	}
	env := c.v.expressionEnv()
	if env == nil {
		return
	}
	prog, err := env.compile(c.r.Expr, len(c.p.labels))
	if err != nil {
		c.add("expr", "%v", err)
		return
	}
	c.r.prog = prog
	if c.p.catVals == nil {
		// Categories as CEL strings, boxed once here rather than per
		// cart line per sale; the catalog is checked before the rules.
		c.p.catVals = make(map[string]ref.Val, len(c.p.labels))
		for id := range c.p.labels {
			c.p.catVals[id] = types.String(id)
		}
	}
}

func evalExpr(e *evaluation, r *Rule) {
	if r.prog == nil || !e.applies(r) {
		return
	}
	vars := e.exprVars()
	if vars.beyond != "" {
		// The load-time cost bound does not hold for this sale.
		e.w("expression not run: ")
		e.w(vars.beyond)
		e.fireRule(r, sale.Reason{Code: sale.CodeExprFailed, Text: "not run: " + vars.beyond, Category: r.names})
		return
	}
	out, _, err := r.prog.Eval(vars)
	if err != nil {
		// Fail closed: an expression that cannot finish (division by zero,
		// a missing map key) must not wave the sale through.
		msg := err.Error()
		e.w("expression failed: ")
		e.w(msg)
		e.fireRule(r, sale.Reason{Code: sale.CodeExprFailed, Text: msg, Category: r.names})
		return
	}
	if b, ok := out.Value().(bool); ok && b {
		reason := r.Reason
		if reason == "" {
			reason = "expression is true: " + r.Expr
		}
		e.w(reason)
		e.fireRule(r, sale.Reason{Code: sale.CodeExpr, Text: reason, TextJA: r.ReasonJA, Category: r.names})
	}
}
