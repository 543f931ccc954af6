// Package console serves the HQ console, the fraud team's web pages, on
// HQ's API listener: the login, the shell every page shares (navigation,
// language, user and role, logout) and its static files. Each page is an
// ES module of its own (web/static/pages/PAGE.js) that the shell's
// console.js loads and hands a ctx; the pages read and write through HQ's
// JSON API (/v1/...), which a console session authenticates (apiauth).
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/internal/webassets"
)

// Pages are the console's pages, in navigation order.
var Pages = []string{"fleet", "alerts", "cases", "lists", "policies", "charts"}

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static
var staticFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "web/templates/*.html"))

// ChartJSPath is where the console serves Chart.js (ctx.chartJS()).
const ChartJSPath = "/console/static/vendor/chart.umd.min.js"

// maxLoginForm bounds the login form: a name and a password.
const maxLoginForm = 4 << 10

// Config wires a Console.
type Config struct {
	// Auth is HQ's API authority: its Console makes the sessions; when it
	// is open (no tokens, no users), so is the console, as apiauth.Open.
	Auth apiauth.Authority
	Log  *slog.Logger
}

// Console serves the pages.
type Console struct {
	auth   apiauth.Authority
	log    *slog.Logger
	static fs.FS
}

// New makes the console.
func New(cfg Config) *Console {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	static, err := fs.Sub(staticFS, "web/static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return &Console{auth: cfg.Auth, log: cfg.Log, static: static}
}

// Register adds the console's routes to mux: / and /console/... .
func (c *Console) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", redirect("/console/"))
	mux.HandleFunc("GET /console/{$}", redirect("/console/fleet"))
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.HandleFunc("POST /console/logout", c.logout)
	mux.HandleFunc("GET /console/{page}", c.page)
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", noCache(http.FileServerFS(c.static))))
	mux.HandleFunc("GET "+ChartJSPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(webassets.ChartJS())
	})
}

func redirect(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query().Get("lang"); validLang(q) {
			to += "?lang=" + q
		}
		http.Redirect(w, r, to, http.StatusFound)
	}
}

// noCache makes the browser revalidate the static files, so a new binary's
// scripts are never mixed with an old page's.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// who is the request's console user: its session, or apiauth.Open when
// HQ has neither tokens nor users. ok false: a login is needed.
func (c *Console) who(r *http.Request) (p apiauth.Principal, csrf string, ok bool) {
	if c.auth.IsOpen() {
		return apiauth.Open, "", true
	}
	if c.auth.Console == nil {
		return apiauth.Principal{}, "", false
	}
	s, ok := c.auth.Console.Session(r)
	return s.Data, s.CSRF, ok
}

// shellData is what the templates get.
type shellData struct {
	Lang, Other string
	T           map[string]string
	Page        string
	Pages       []navItem
	User        string
	Role        string
	Open        bool
	CSRF        string
	PageCSS     string
	Config      pageConfig
	Error       string
	Next        string
	Login       bool // the login form can be used (a users file is configured)
}

type navItem struct {
	Name, Label string
	Current     bool
}

// pageConfig is read by console.js (a JSON data block, never HTML).
type pageConfig struct {
	Page  string            `json:"page"`
	Lang  string            `json:"lang"`
	User  string            `json:"user"`
	Role  string            `json:"role"`
	CSRF  string            `json:"csrf"`
	Shell map[string]string `json:"shell"`
}

func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("page")
	if !slices.Contains(Pages, name) {
		http.NotFound(w, r)
		return
	}
	lang := pickLang(w, r)
	p, csrf, ok := c.who(r)
	if !ok {
		http.Redirect(w, r, "/console/login?next="+url.QueryEscape("/console/"+name), http.StatusSeeOther)
		return
	}
	role := string(apiauth.UserRoleOf(p.Role))
	d := c.shell(lang, name)
	d.User, d.Role, d.Open, d.CSRF = p.Name, role, c.auth.IsOpen(), csrf
	if _, err := fs.Stat(c.static, "pages/"+name+".css"); err == nil {
		d.PageCSS = "/console/static/pages/" + name + ".css"
	}
	d.Config = pageConfig{Page: name, Lang: lang, User: p.Name, Role: role, CSRF: csrf, Shell: jsStrings(lang)}
	c.render(w, http.StatusOK, "layout.html", d)
}

func (c *Console) shell(lang, page string) shellData {
	d := shellData{Lang: lang, Other: otherLang(lang), T: table[lang], Page: page}
	for _, p := range Pages {
		d.Pages = append(d.Pages, navItem{Name: p, Label: table[lang]["nav."+p], Current: p == page})
	}
	return d
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	lang := pickLang(w, r)
	if _, _, ok := c.who(r); ok {
		http.Redirect(w, r, next(r), http.StatusSeeOther)
		return
	}
	c.renderLogin(w, http.StatusOK, lang, r, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, code int, lang string, r *http.Request, msg string) {
	d := c.shell(lang, "login")
	d.Error, d.Next, d.Login = msg, next(r), c.auth.Console != nil
	if !d.Login && d.Error == "" {
		d.Error = table[lang]["login.noUsers"]
	}
	c.render(w, code, "login.html", d)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	lang := pickLang(w, r)
	if c.auth.Console == nil {
		c.renderLogin(w, http.StatusForbidden, lang, r, "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		c.renderLogin(w, http.StatusBadRequest, lang, r, fmt.Sprintf("%s: %v", table[lang]["login.badForm"], err))
		return
	}
	name := r.PostForm.Get("user")
	_, err := c.auth.Console.Login(w, r, name, r.PostForm.Get("password"))
	switch {
	case errors.Is(err, apiauth.ErrTooManyLogins):
		c.log.Warn("console login refused: too many attempts", "user", name, "client", apiauth.ClientAddr(r))
		w.Header().Set("Retry-After", fmt.Sprint(int(apiauth.LoginWindow/time.Second)))
		c.renderLogin(w, http.StatusTooManyRequests, lang, r, table[lang]["login.tooMany"])
	case errors.Is(err, apiauth.ErrWrongLogin):
		c.log.Warn("failed console login", "user", name, "client", apiauth.ClientAddr(r))
		c.renderLogin(w, http.StatusUnauthorized, lang, r, table[lang]["login.wrong"])
	case err != nil:
		c.log.Error("console login", "err", err)
		c.renderLogin(w, http.StatusInternalServerError, lang, r, err.Error())
	default:
		c.log.Info("console login", "user", name, "client", apiauth.ClientAddr(r))
		http.Redirect(w, r, next(r), http.StatusSeeOther)
	}
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if c.auth.Console == nil {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	s, ok := c.auth.Console.Session(r)
	if ok {
		token := r.Header.Get(apiauth.CSRFHeader)
		if token == "" {
			token = r.PostFormValue("csrf")
		}
		if !s.CSRFMatches(token) {
			http.Error(w, "console: missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		c.log.Info("console logout", "user", s.Data.Name)
	}
	c.auth.Console.Logout(w, r)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// next is where a login goes on to: the page it was sent from, if that is
// one of the console's, else the fleet (never another site).
func next(r *http.Request) string {
	n := r.FormValue("next")
	for _, p := range Pages {
		if n == "/console/"+p {
			return n
		}
	}
	return "/console/fleet"
}

func (c *Console) render(w http.ResponseWriter, code int, name string, d shellData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Scripts only from the console itself: a value that slips into the
	// page unescaped still cannot run.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(code)
	if err := templates.ExecuteTemplate(w, name, d); err != nil {
		c.log.Error("console template", "page", name, "err", err)
	}
}
