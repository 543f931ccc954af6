package console

import (
	"net/http"
	"strings"
)

// langCookie remembers the language picked with ?lang=.
const langCookie = "lang"

// table holds the shell's own strings; each page brings its own (its
// module's `strings`).
var table = map[string]map[string]string{
	"ja": {
		"title":          "posguard HQ コンソール",
		"nav.fleet":      "店舗・レジ",
		"nav.alerts":     "アラート",
		"nav.cases":      "ケース",
		"nav.lists":      "リスト",
		"nav.policies":   "ポリシー",
		"nav.charts":     "グラフ",
		"nav.login":      "ログイン",
		"role.viewer":    "閲覧者",
		"role.analyst":   "アナリスト",
		"role.admin":     "管理者",
		"logout":         "ログアウト",
		"open":           "ログインなし（ループバック）",
		"langName":       "日本語",
		"otherLangName":  "English",
		"login.user":     "ユーザー名",
		"login.password": "パスワード",
		"login.submit":   "ログイン",
		"login.wrong":    "ユーザー名またはパスワードが違います。",
		"login.tooMany":  "ログインの試行が多すぎます。数分後にもう一度お試しください。",
		"login.badForm":  "ログインフォームが不正です",
		"login.noUsers":  "この HQ にはコンソールのユーザーがいません（posguard hq --console-users FILE、ユーザーは posguard hq-user で作成）。",
		"js.loading":     "読み込み中…",
		"js.missing":     "このページ（{page}）はまだありません：モジュール {url} を読み込めませんでした。",
		"js.failed":      "ページの表示に失敗しました：{error}",
	},
	"en": {
		"title":          "posguard HQ console",
		"nav.fleet":      "Fleet",
		"nav.alerts":     "Alerts",
		"nav.cases":      "Cases",
		"nav.lists":      "Lists",
		"nav.policies":   "Policies",
		"nav.charts":     "Charts",
		"nav.login":      "Log in",
		"role.viewer":    "viewer",
		"role.analyst":   "analyst",
		"role.admin":     "admin",
		"logout":         "Log out",
		"open":           "no login (loopback)",
		"langName":       "English",
		"otherLangName":  "日本語",
		"login.user":     "User",
		"login.password": "Password",
		"login.submit":   "Log in",
		"login.wrong":    "Unknown user or wrong password.",
		"login.tooMany":  "Too many login attempts. Try again in a few minutes.",
		"login.badForm":  "Bad login form",
		"login.noUsers":  "This HQ has no console users (posguard hq --console-users FILE; make users with posguard hq-user).",
		"js.loading":     "Loading…",
		"js.missing":     "This page ({page}) is not there yet: its module {url} could not be loaded.",
		"js.failed":      "The page failed: {error}",
	},
}

func validLang(l string) bool { return l == "ja" || l == "en" }

func otherLang(l string) string {
	if l == "ja" {
		return "en"
	}
	return "ja"
}

// pickLang is the page's language: ?lang= (remembered in a cookie), else
// the cookie, else Japanese.
func pickLang(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); validLang(l) {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/console/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode})
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && validLang(c.Value) {
		return c.Value
	}
	return "ja"
}

// jsStrings are the strings console.js itself shows.
func jsStrings(lang string) map[string]string {
	out := map[string]string{}
	for k, v := range table[lang] {
		if rest, ok := strings.CutPrefix(k, "js."); ok {
			out[rest] = v
		}
	}
	return out
}
