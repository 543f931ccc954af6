package reason

import (
	"fmt"
	"strings"
	"testing"

	"github.com/posguard/posguard/internal/golden"
	"github.com/posguard/posguard/policy/sale"
)

var carton = sale.Names{ID: "tobacco-carton", JA: "タバコ(カートン)", EN: "tobacco cartons"}

// samples has one reason per code, with the parameters the engine gives
// it; the golden file shows every template in both languages.
func samples() []sale.Reason {
	return []sale.Reason{
		{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Unit: sale.UnitItems, Category: carton},
		{Code: sale.CodeCartAmount, Value: 18000, Limit: 12000, Unit: sale.UnitYen, Category: carton},
		{Code: sale.CodeCartUnits, Value: 30, Limit: 20, Unit: sale.UnitUnits, Category: carton},
		{Code: sale.CodeSaleAmount, Value: 12300, Limit: 10000, Unit: sale.UnitYen},
		{Code: sale.CodeSaleAmount, Value: 100000, Limit: 50000, Unit: sale.UnitYen, Category: sale.Names{ID: "tobacco", JA: "タバコ", EN: "tobacco"}},
		{Code: sale.CodeFreshTopUp, Value: 15400, Limit: 10000, Unit: sale.UnitYen, Window: 3600, Ago: 1800, TopUp: 15000},
		{Code: sale.CodeFreshTopUp, Value: 6000, Limit: 10000, Unit: sale.UnitYen, Window: 3600, Ago: 2400, TopUp: 90000, Spent: 90400, Scope: "store", Place: "S001", Category: carton},
		{Code: sale.CodeVelocitySales, Value: 4, Limit: 3, Unit: sale.UnitSales, Window: 86400, Scope: "store", Place: "S001", Category: carton},
		{Code: sale.CodeVelocityAmount, Value: 60000, Limit: 50000, Unit: sale.UnitYen, Window: 86400, Scope: "register", Place: "R1"},
		{Code: sale.CodeVelocityQuantity, Value: 12, Limit: 10, Unit: sale.UnitItems, Window: 3600, Scope: "store", Place: "S001", Category: carton},
		{Code: sale.CodeAccounts, Value: 9, Limit: 3, Unit: sale.UnitAccounts, Window: 1800, Scope: "store", Place: "S001", Category: carton},
		{Code: sale.CodeNewDevice, Value: 3000, Limit: 86400, Unit: sale.UnitSeconds, Ago: 3000},
		{Code: sale.CodeNewAccount, Value: 7200, Limit: 604800, Unit: sale.UnitSeconds, Ago: 7200},
		{Code: sale.CodeForeignLogin},
		{Code: sale.CodeDenylisted},
		{Code: sale.CodeExpr, Text: "top-up spent on cartons within the hour"},
		{Code: sale.CodeExprFailed, Text: "division by zero"},
		{Code: sale.CodeTokenInvalid, Text: "replayed"},
		{Code: sale.CodeTokenUnknown, Text: "unknown"},
		{Code: sale.CodeRange, Text: "line 1 (4901234000100): quantity 10000 out of 0..9999"},
		{Code: sale.CodeOfflineSale, Value: 12000, Limit: 10000, Unit: sale.UnitYen},
		{Code: sale.CodeOfflineQuantity, Value: 2, Limit: 1, Unit: sale.UnitItems, Category: carton},
		{Code: sale.CodeOfflineAmount, Value: 12000, Limit: 6000, Unit: sale.UnitYen, Category: carton},
		{Code: sale.CodeFailModeCategory, Category: carton},
		{Code: sale.CodeFailModeSale, Value: 10200, Limit: 10000, Unit: sale.UnitYen},
	}
}

// TestEveryCodeHasTemplates: each code of the contract renders in both
// languages, differently, and without falling back to the bare code.
func TestEveryCodeHasTemplates(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range samples() {
		seen[r.Code] = true
	}
	for _, code := range sale.Codes() {
		if _, ok := templates[code]; !ok {
			t.Errorf("code %s has no template", code)
		}
		if !seen[code] {
			t.Errorf("code %s has no sample in this test", code)
		}
	}
	for code := range templates {
		found := false
		for _, c := range sale.Codes() {
			found = found || c == code
		}
		if !found {
			t.Errorf("template for %s, which sale.Codes does not list", code)
		}
	}
	for _, r := range samples() {
		ja, en := Render(Japanese, r), Render(English, r)
		if ja == en || ja == "" || en == "" || strings.HasPrefix(ja, r.Code) {
			t.Errorf("%s: ja %q, en %q", r.Code, ja, en)
		}
	}
}

// TestGolden shows every template in both languages.
func TestGolden(t *testing.T) {
	var b strings.Builder
	for _, r := range samples() {
		fmt.Fprintf(&b, "%s\n  ja: %s\n  en: %s\n", r.Code, Render(Japanese, r), Render(English, r))
	}
	golden.Check(t, "testdata/templates.golden", []byte(b.String()))
}

func TestRender(t *testing.T) {
	for _, tt := range []struct {
		lang string
		r    sale.Reason
		want string
	}{
		{"ja", sale.Reason{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Category: carton}, "タバコ(カートン) 3点 > 上限 2点"},
		{"en", sale.Reason{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Category: carton}, "tobacco cartons 3 > limit 2"},
		{"ja", sale.Reason{Code: sale.CodeFreshTopUp, Value: 15000, Window: 3600, Ago: 1800, TopUp: 15000}, "30分前に15,000円チャージ、15,000円の購入（1時間以内）"},
		{"en", sale.Reason{Code: sale.CodeFreshTopUp, Value: 15000, Window: 3600, Ago: 1800, TopUp: 15000}, "¥15,000 top-up 30 min before a ¥15,000 sale (within 1 h)"},
		{"ja", sale.Reason{Code: sale.CodeAccounts, Value: 9, Limit: 3, Window: 86400, Scope: "register", Place: "R1"}, "レジ R1で24時間に9アカウント > 上限 3"},
		// A name missing in one language falls back to the other, then the id.
		{"ja", sale.Reason{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Category: sale.Names{ID: "x", EN: "x things"}}, "x things 3点 > 上限 2点"},
		{"en", sale.Reason{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Category: sale.Names{ID: "x"}}, "x 3 > limit 2"},
		// Unknown language: Japanese, the stores' language.
		{"fr", sale.Reason{Code: sale.CodeDenylisted}, "本部の利用停止リストにあるアカウント"},
		{"ja", sale.Reason{Code: sale.CodeDenylisted, Text: "crew-hopping"}, "本部の利用停止リストにあるアカウント（チェーンルール crew-hopping）"},
		{"en", sale.Reason{Code: sale.CodeDenylisted, Text: "crew-hopping"}, "account is on the HQ denylist: chain rule crew-hopping"},
		// A code from a newer register: the code and its text, not nothing.
		{"ja", sale.Reason{Code: "new.code", Text: "x"}, "new.code: x"},
		{"en", sale.Reason{Code: sale.CodeTokenInvalid, Text: "replayed"}, "token rejected: replayed"},
		{"ja", sale.Reason{Code: sale.CodeTokenInvalid, Text: "replayed"}, "支払いコードを拒否: 使用済みのコード（replayed）"},
	} {
		if got := Render(tt.lang, tt.r); got != tt.want {
			t.Errorf("Render(%s, %+v) = %q, want %q", tt.lang, tt.r, got, tt.want)
		}
	}
}

func TestFired(t *testing.T) {
	f := sale.Fired{ID: "c", Action: "deny", Mode: "enforce", Reason: "old sentence", Reasons: []sale.Reason{
		{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Category: carton},
		{Code: sale.CodeCartAmount, Value: 18000, Limit: 12000, Category: carton},
	}}
	if got, want := Fired("ja", f), "タバコ(カートン) 3点 > 上限 2点／タバコ(カートン) 18,000円 > 上限 12,000円"; got != want {
		t.Errorf("ja: %q, want %q", got, want)
	}
	if got, want := Fired("en", f), "tobacco cartons 3 > limit 2; tobacco cartons ¥18,000 > limit ¥12,000"; got != want {
		t.Errorf("en: %q, want %q", got, want)
	}
	f.Reasons = nil
	if got := Fired("ja", f); got != "old sentence" {
		t.Errorf("no reasons: %q, want the sentence", got)
	}
	d := sale.Decision{Rules: []sale.Fired{{Mode: "shadow", Reasons: []sale.Reason{{Code: sale.CodeForeignLogin}}}}}
	if got := Decision("ja", d); len(got) != 1 || got[0] != "（試験ルール）24時間以内に海外からログイン" {
		t.Errorf("shadow: %q", got)
	}
}

func TestFormats(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Yen("ja", 12000), "12,000円"},
		{Yen("en", 12000), "¥12,000"},
		{Yen("ja", 0), "0円"},
		{Yen("ja", -1500), "-1,500円"},
		{Yen("en", 1234567), "¥1,234,567"},
		{Count(1000000), "1,000,000"},
		{Duration("ja", 1800), "30分"},
		{Duration("ja", 3600), "1時間"},
		{Duration("ja", 86400), "24時間"},
		{Duration("ja", 5400), "1時間30分"},
		{Duration("ja", 2412), "40分"},
		{Duration("ja", 45), "45秒"},
		{Duration("ja", 0), "0秒"},
		{Duration("ja", -5), "0秒"},
		{Duration("ja", 2*86400), "48時間"},
		{Duration("ja", 365*86400+3600), "365日"},
		{Duration("en", 1800), "30 min"},
		{Duration("en", 86400), "24 h"},
		{Duration("en", 5400), "1 h 30 min"},
		{Duration("en", 3*86400), "3 days"},
		{MaskAccount("acct-victim-01"), "…m-01"},
		{MaskAccount("9f2c01d3"), "…01d3"},
		{MaskAccount("abc"), "…c"},
		{MaskAccount("a"), "…"},
		{MaskAccount(""), ""},
		{MaskAccount("アカウント番号"), "…ト番号"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
