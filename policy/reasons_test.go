package policy

import (
	"testing"
	"time"

	"github.com/posguard/posguard/policy/reason"
	"github.com/posguard/posguard/policy/sale"
)

// TestEveryKindGivesReasons: a sale that fires a rule of every kind gets,
// for each, the kind's reason code with its parameters, rendered by the
// shared templates in both languages from the catalog's names.
func TestEveryKindGivesReasons(t *testing.T) {
	src := `apiVersion: posguard/v1
kind: Policy
metadata: {name: t, version: 7, issuedAt: 2026-01-01T00:00:00Z, expiresAt: 2027-01-01T00:00:00Z}
catalog:
  categories:
    - {id: tobacco-carton, names: {ja: タバコ(カートン), en: tobacco cartons}}
  items:
    - {jan: "4901234000100", name: carton, category: tobacco-carton, unitPrice: 6000, units: 10}
rules:
  - {id: cart, kind: cart_limit, action: review, categories: [tobacco-carton], maxQuantity: 2, maxAmount: 12000, maxUnits: 20}
  - {id: sale, kind: sale_amount, action: review, maxAmount: 10000}
  - {id: topup, kind: fresh_topup, action: review, within: 1h, minAmount: 10000}
  - {id: velocity, kind: account_velocity, action: review, window: 24h, maxSales: 1, maxAmount: 10000, maxQuantity: 2, categories: [tobacco-carton]}
  - {id: accounts, kind: register_accounts, action: review, window: 30m, maxAccounts: 1, categories: [tobacco-carton], scope: register}
  - {id: device, kind: new_device, action: review, within: 24h}
  - {id: age, kind: account_age, action: review, minAge: 168h}
  - {id: abroad, kind: foreign_login, action: review}
  - {id: deny, kind: denylist, action: deny}
  - {id: expr, kind: expr, action: review, expr: "sale.amount > 1000", reason: big sale}
`
	p, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	pm := Payment{Kind: TokenPG1, Account: "crew-1", TopUpAt: t0.Add(-30 * time.Minute), TopUpAmount: 15000,
		DeviceSince: t0.Add(-50 * time.Minute), AccountSince: t0.Add(-2 * time.Hour), ForeignLogin: true}
	h := NewMemoryHistory([]PastSale{pastSale("crew-2", 10*time.Minute, cartons(1)), pastSale("crew-1", time.Hour, cartons(1))}, []string{"crew-1"})
	d := Evaluate(p, Request{Store: "S1", Register: "R1", At: t0, Lines: []Line{cartons(3)}, Payment: pm}, h)
	want := map[string][]string{
		"cart":     {sale.CodeCartQuantity, sale.CodeCartAmount, sale.CodeCartUnits},
		"sale":     {sale.CodeSaleAmount},
		"topup":    {sale.CodeFreshTopUp},
		"velocity": {sale.CodeVelocitySales, sale.CodeVelocityAmount, sale.CodeVelocityQuantity},
		"accounts": {sale.CodeAccounts},
		"device":   {sale.CodeNewDevice},
		"age":      {sale.CodeNewAccount},
		"abroad":   {sale.CodeForeignLogin},
		"deny":     {sale.CodeDenylisted},
		"expr":     {sale.CodeExpr},
	}
	if len(d.Rules) != len(want) {
		t.Fatalf("fired %v, want every kind", firedIDs(d))
	}
	for _, f := range d.Rules {
		codes := want[f.ID]
		if len(f.Reasons) != len(codes) {
			t.Errorf("%s: reasons %+v, want codes %v", f.ID, f.Reasons, codes)
			continue
		}
		for i, r := range f.Reasons {
			if r.Code != codes[i] {
				t.Errorf("%s: reason %d is %s, want %s", f.ID, i, r.Code, codes[i])
			}
		}
	}
	rendered := map[string]string{}
	for _, f := range d.Rules {
		rendered[f.ID+" ja"] = reason.Fired(reason.Japanese, f)
		rendered[f.ID+" en"] = reason.Fired(reason.English, f)
	}
	for key, wantText := range map[string]string{
		"cart ja":     "タバコ(カートン) 3点 > 上限 2点／タバコ(カートン) 18,000円 > 上限 12,000円／タバコ(カートン) 30個 > 上限 20個",
		"topup ja":    "30分前に15,000円チャージ、18,000円の購入（1時間以内、10,000円以上）",
		"topup en":    "¥15,000 top-up 30 min before a ¥18,000 sale (within 1 h, min ¥10,000)",
		"velocity ja": "このアカウントのタバコ(カートン)の購入 店舗 S1で24時間に2回 > 上限 1回／このアカウントのタバコ(カートン)の購入 店舗 S1で24時間に24,000円 > 上限 10,000円／このアカウントのタバコ(カートン)の購入 店舗 S1で24時間に4点 > 上限 2点",
		"accounts ja": "レジ R1で30分に2アカウント > 上限 1",
		"device ja":   "端末登録から50分 < 最低 24時間",
		"age en":      "account created 2 h before the sale < minimum 7 days",
		"expr en":     "big sale",
	} {
		if rendered[key] != wantText {
			t.Errorf("%s: %q, want %q", key, rendered[key], wantText)
		}
	}
}
