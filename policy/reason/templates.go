package reason

import (
	"strings"

	"github.com/posguard/posguard/policy/sale"
)

// template renders one code in one language.
type template func(r *sale.Reason) string

// templates holds, for every reason code, its Japanese and English
// sentence (indexed by lang). TestEveryCodeHasTemplates keeps it complete.
var templates = map[string][2]template{
	sale.CodeCartQuantity: {
		func(r *sale.Reason) string {
			return cat(ja, r) + " " + Count(r.Value) + "点 > 上限 " + Count(r.Limit) + "点"
		},
		func(r *sale.Reason) string { return cat(en, r) + " " + Count(r.Value) + " > limit " + Count(r.Limit) },
	},
	sale.CodeCartAmount: {
		func(r *sale.Reason) string {
			return cat(ja, r) + " " + Yen(Japanese, r.Value) + " > 上限 " + Yen(Japanese, r.Limit)
		},
		func(r *sale.Reason) string {
			return cat(en, r) + " " + Yen(English, r.Value) + " > limit " + Yen(English, r.Limit)
		},
	},
	sale.CodeCartUnits: {
		func(r *sale.Reason) string {
			return cat(ja, r) + " " + Count(r.Value) + "個 > 上限 " + Count(r.Limit) + "個"
		},
		func(r *sale.Reason) string {
			return cat(en, r) + " " + Count(r.Value) + " units > limit " + Count(r.Limit) + " units"
		},
	},
	sale.CodeSaleAmount: {
		func(r *sale.Reason) string {
			return whatJA(r) + " " + Yen(Japanese, r.Value) + " > 上限 " + Yen(Japanese, r.Limit)
		},
		func(r *sale.Reason) string {
			return whatEN(r) + " " + Yen(English, r.Value) + " > limit " + Yen(English, r.Limit)
		},
	},
	sale.CodeFreshTopUp: {
		func(r *sale.Reason) string {
			s := Duration(Japanese, r.Ago) + "前に" + Yen(Japanese, r.TopUp) + "チャージ、"
			if r.Category.ID != "" {
				s += cat(ja, r) + " "
			}
			s += Yen(Japanese, r.Value) + "の購入"
			if r.Spent > 0 {
				s += "、チャージ後に" + place(ja, r) + "で計" + Yen(Japanese, r.Spent)
			}
			s += "（" + Duration(Japanese, r.Window) + "以内"
			if r.Limit > 0 {
				s += "、" + Yen(Japanese, r.Limit) + "以上"
			}
			return s + "）"
		},
		func(r *sale.Reason) string {
			s := Yen(English, r.TopUp) + " top-up " + Duration(English, r.Ago) + " before a " + Yen(English, r.Value) + " sale"
			if r.Category.ID != "" {
				s += " of " + cat(en, r)
			}
			if r.Spent > 0 {
				s += ", " + Yen(English, r.Spent) + " by the account " + place(en, r) + " since the top-up"
			}
			s += " (within " + Duration(English, r.Window)
			if r.Limit > 0 {
				s += ", min " + Yen(English, r.Limit)
			}
			return s + ")"
		},
	},
	sale.CodeVelocitySales: {
		func(r *sale.Reason) string {
			return velocityJA(r) + Count(r.Value) + "回 > 上限 " + Count(r.Limit) + "回"
		},
		func(r *sale.Reason) string { return Count(r.Value) + " sales" + velocityEN(r) + Count(r.Limit) },
	},
	sale.CodeVelocityAmount: {
		func(r *sale.Reason) string {
			return velocityJA(r) + Yen(Japanese, r.Value) + " > 上限 " + Yen(Japanese, r.Limit)
		},
		func(r *sale.Reason) string { return Yen(English, r.Value) + velocityEN(r) + Yen(English, r.Limit) },
	},
	sale.CodeVelocityQuantity: {
		func(r *sale.Reason) string {
			return velocityJA(r) + Count(r.Value) + "点 > 上限 " + Count(r.Limit) + "点"
		},
		func(r *sale.Reason) string { return Count(r.Value) + " items" + velocityEN(r) + Count(r.Limit) },
	},
	sale.CodeAccounts: {
		func(r *sale.Reason) string {
			return place(ja, r) + "で" + Duration(Japanese, r.Window) + "に" + Count(r.Value) + "アカウント > 上限 " + Count(r.Limit)
		},
		func(r *sale.Reason) string {
			return Count(r.Value) + " accounts " + place(en, r) + " in " + Duration(English, r.Window) + " > limit " + Count(r.Limit)
		},
	},
	sale.CodeNewDevice: {
		func(r *sale.Reason) string {
			return "端末登録から" + Duration(Japanese, r.Ago) + " < 最低 " + Duration(Japanese, r.Limit)
		},
		func(r *sale.Reason) string {
			return "device bound " + Duration(English, r.Ago) + " before the sale < minimum " + Duration(English, r.Limit)
		},
	},
	sale.CodeNewAccount: {
		func(r *sale.Reason) string {
			return "アカウント作成から" + Duration(Japanese, r.Ago) + " < 最低 " + Duration(Japanese, r.Limit)
		},
		func(r *sale.Reason) string {
			return "account created " + Duration(English, r.Ago) + " before the sale < minimum " + Duration(English, r.Limit)
		},
	},
	sale.CodeForeignLogin: {
		func(r *sale.Reason) string { return "24時間以内に海外からログイン" },
		func(r *sale.Reason) string { return "account logged in from abroad in the last 24 h" },
	},
	sale.CodeDenylisted: {
		func(r *sale.Reason) string {
			if r.Text != "" {
				return "本部の利用停止リストにあるアカウント（チェーンルール " + r.Text + "）"
			}
			return "本部の利用停止リストにあるアカウント"
		},
		func(r *sale.Reason) string {
			if r.Text != "" {
				return "account is on the HQ denylist: chain rule " + r.Text
			}
			return "account is on the HQ denylist"
		},
	},
	sale.CodeExpr: {
		// The policy author's own words: they are shown as written.
		func(r *sale.Reason) string {
			if r.TextJA != "" {
				return r.TextJA
			}
			return "条件に該当: " + r.Text
		},
		func(r *sale.Reason) string { return r.Text },
	},
	sale.CodeExprFailed: {
		func(r *sale.Reason) string {
			return "条件式を評価できません（安全側で判定）: " + r.Text
		},
		func(r *sale.Reason) string { return "expression failed: " + r.Text },
	},
	sale.CodeTokenInvalid: {
		func(r *sale.Reason) string { return "支払いコードを拒否: " + tokenJA(r.Text) },
		func(r *sale.Reason) string { return "token rejected: " + r.Text },
	},
	sale.CodeTokenUnknown: {
		func(r *sale.Reason) string {
			return "対応していない支払いコード（種類 " + orNone(r.Text) + "）"
		},
		func(r *sale.Reason) string { return "token matched no known wallet (kind " + orNone(r.Text) + ")" },
	},
	sale.CodeRange: {
		func(r *sale.Reason) string {
			return "会計を拒否: 数量・単価・合計が範囲外（" + r.Text + "）"
		},
		func(r *sale.Reason) string { return "sale refused: " + r.Text },
	},
	sale.CodeOfflineSale: {
		func(r *sale.Reason) string {
			return "オフライン: 会計 " + Yen(Japanese, r.Value) + " > 上限 " + Yen(Japanese, r.Limit)
		},
		func(r *sale.Reason) string {
			return "offline: sale " + Yen(English, r.Value) + " > limit " + Yen(English, r.Limit)
		},
	},
	sale.CodeOfflineQuantity: {
		func(r *sale.Reason) string {
			return "オフライン: " + cat(ja, r) + " " + Count(r.Value) + "点 > 上限 " + Count(r.Limit) + "点"
		},
		func(r *sale.Reason) string {
			return "offline: " + cat(en, r) + " " + Count(r.Value) + " > limit " + Count(r.Limit)
		},
	},
	sale.CodeOfflineAmount: {
		func(r *sale.Reason) string {
			return "オフライン: " + cat(ja, r) + " " + Yen(Japanese, r.Value) + " > 上限 " + Yen(Japanese, r.Limit)
		},
		func(r *sale.Reason) string {
			return "offline: " + cat(en, r) + " " + Yen(English, r.Value) + " > limit " + Yen(English, r.Limit)
		},
	},
	sale.CodeFailModeCategory: {
		func(r *sale.Reason) string { return "有効なポリシーなし: " + cat(ja, r) + "を含む会計" },
		func(r *sale.Reason) string { return "no valid policy: sale contains " + cat(en, r) },
	},
	sale.CodeFailModeSale: {
		func(r *sale.Reason) string {
			return "有効なポリシーなし: 会計 " + Yen(Japanese, r.Value) + " > 上限 " + Yen(Japanese, r.Limit)
		},
		func(r *sale.Reason) string {
			return "no valid policy: sale " + Yen(English, r.Value) + " > limit " + Yen(English, r.Limit)
		},
	},
}

func cat(l lang, r *sale.Reason) string {
	if l == en {
		return Category(English, r.Category)
	}
	return Category(Japanese, r.Category)
}

// whatJA and whatEN name what a sale_amount rule summed: the categories,
// or the whole sale.
func whatJA(r *sale.Reason) string {
	if r.Category.ID == "" {
		return "会計"
	}
	return cat(ja, r)
}

func whatEN(r *sale.Reason) string {
	if r.Category.ID == "" {
		return "sale"
	}
	return cat(en, r)
}

// place is where past sales were counted: 店舗 S001 / store S001, レジ R1 /
// register R1.
func place(l lang, r *sale.Reason) string {
	switch {
	case l == ja && r.Scope == "register":
		return "レジ " + r.Place
	case l == ja:
		return "店舗 " + r.Place
	case r.Scope == "register":
		return "at register " + r.Place
	}
	return "at store " + r.Place
}

func velocityJA(r *sale.Reason) string {
	s := "このアカウントの"
	if r.Category.ID != "" {
		s += cat(ja, r) + "の"
	}
	return s + "購入 " + place(ja, r) + "で" + Duration(Japanese, r.Window) + "に"
}

func velocityEN(r *sale.Reason) string {
	s := ""
	if r.Category.ID != "" {
		s = " of " + cat(en, r)
	}
	return s + " by the account " + place(en, r) + " in " + Duration(English, r.Window) + " > limit "
}

// tokenJA names the token package's rejection codes in Japanese; an
// unknown code is shown as it is.
func tokenJA(code string) string {
	if s, ok := tokenCodesJA[code]; ok {
		return s + "（" + code + "）"
	}
	return code
}

var tokenCodesJA = map[string]string{
	"replayed":       "使用済みのコード",
	"bad_signature":  "署名が不正",
	"expired":        "有効期限切れ",
	"not_yet_valid":  "有効期間前",
	"malformed":      "形式が不正",
	"unknown_issuer": "発行元が不明",
	"unknown_key":    "鍵が不明",
	"too_long":       "長すぎるコード",
	"alg_mismatch":   "署名方式が不一致",
	"too_old":        "発行から時間が経ちすぎ",
	"atc_replayed":   "使用済みのカウンタ",
	"unknown":        "不明な理由",
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "none"
	}
	return s
}
