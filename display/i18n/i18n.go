// Package i18n holds the display's Japanese and English strings and picks
// one from a browser's Accept-Language header. Japanese comes first: the
// stores are Japanese, so anything unclear falls back to Japanese.
package i18n

import (
	"fmt"

	"golang.org/x/text/language"
)

// Supported languages, in order of preference when the browser gives no
// usable hint.
const (
	Japanese = "ja"
	English  = "en"
)

// maxHeader bounds how much of a header the matcher looks at; a real browser
// sends well under 200 bytes, and the parser's cost grows with the input.
const maxHeader = 1024

// matcher is precompiled once: Japanese first so it is the fallback.
var matcher = language.NewMatcher([]language.Tag{language.Japanese, language.English})

// Pick returns "ja" or "en" for an Accept-Language header. A header that is
// empty, malformed or names neither language gives Japanese.
func Pick(acceptLanguage string) string {
	lang, _ := Parse(acceptLanguage)
	return lang
}

// Parse is Pick that also says why it fell back to Japanese, for logs and
// tests: a malformed header is reported, not silently ignored.
func Parse(acceptLanguage string) (string, error) {
	if acceptLanguage == "" {
		return Japanese, nil
	}
	if len(acceptLanguage) > maxHeader {
		return Japanese, fmt.Errorf("accept-language: header of %d bytes exceeds %d", len(acceptLanguage), maxHeader)
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil {
		return Japanese, fmt.Errorf("accept-language %q: %w", acceptLanguage, err)
	}
	if len(tags) == 0 {
		return Japanese, nil
	}
	_, idx, conf := matcher.Match(tags...)
	if conf == language.No {
		return Japanese, nil
	}
	if idx == 1 {
		return English, nil
	}
	return Japanese, nil
}

// Valid reports whether lang is one the display has strings for.
func Valid(lang string) bool { return lang == Japanese || lang == English }

// Table returns the strings of every supported language keyed by language,
// for the page to switch without a reload. The returned map is a fresh copy.
func Table() map[string]map[string]string {
	out := make(map[string]map[string]string, len(tables))
	for lang, t := range tables {
		c := make(map[string]string, len(t))
		for k, v := range t {
			c[k] = v
		}
		out[lang] = c
	}
	return out
}

// T returns one string, or the key itself when it is missing so a gap shows
// on screen instead of an empty label.
func T(lang, key string) string {
	if s, ok := tables[lang][key]; ok {
		return s
	}
	return key
}
