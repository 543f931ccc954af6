package httpserve

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Hosts are the names a server answers to in the Host header. A web page
// can make the browser send its requests to 127.0.0.1 by rebinding its own
// DNS name there; the browser then calls the page same-origin and lets it
// read the answers, but the Host header still carries the page's name.
// Refusing names the server does not know closes that door.
type Hosts struct {
	// Listen is the listen address. Its host is accepted; when it is
	// unspecified (0.0.0.0, ::, empty) every IP literal is, since the
	// server then has every address of the machine and a browser only
	// sends an IP literal when the user typed one (no DNS to rebind).
	Listen string
	// Names are further host names clients use (the machine's DNS name, a
	// proxy's), without ports.
	Names []string
	// Setting names where Names are configured; refusals point to it.
	Setting string
}

// Allowed reports whether hostport (a Host header) names this server:
// localhost, a loopback address, the listen host, or one of Names. The
// port is not compared: rebinding cannot change the name part.
func (h Hosts) Allowed(hostport string) bool {
	host := canonical(hostport)
	if host == "" || host == "localhost" {
		// HTTP/1.0 clients may send no Host; browsers always do.
		return true
	}
	listen := canonical(h.Listen)
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		lip := net.ParseIP(listen)
		return listen == "" || (lip != nil && (lip.IsUnspecified() || lip.Equal(ip)))
	}
	if host == listen {
		return true
	}
	return slices.ContainsFunc(h.Names, func(n string) bool { return canonical(n) == host })
}

// canonical is the host part of a host[:port], lower case, without
// brackets or a trailing dot.
func canonical(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	return strings.ToLower(host)
}

// CheckName checks a configured host name: a DNS name or an IP literal,
// without a port, so a typo fails at start rather than as refusals.
func CheckName(name string) error {
	if net.ParseIP(strings.Trim(name, "[]")) != nil {
		return nil
	}
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host name %q: must be 1 to 253 characters", name)
	}
	for i, r := range name {
		ok := r == '-' || r == '.' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if !ok {
			return fmt.Errorf("host name %q: character %q at %d is not a letter, digit, '-' or '.' (no port or scheme)", name, r, i)
		}
	}
	return nil
}

// Guard refuses, before h sees them, requests whose Host is not a name of
// this server (421) and requests carrying an Origin other than the
// server's own (403): a page elsewhere may make the browser send a request
// here, but the browser always says where the page came from.
func Guard(h http.Handler, hosts Hosts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hosts.Allowed(r.Host) {
			msg := fmt.Sprintf("host %q is not a name of this server (DNS rebinding?)", r.Host)
			if hosts.Setting != "" {
				msg += "; if it is, add it to " + hosts.Setting
			}
			Error(w, http.StatusMisdirectedRequest, msg)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			Error(w, http.StatusForbidden, fmt.Sprintf("cross-origin request from %q refused", o))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether an Origin header names the host the request
// was sent to. "null" (sandboxed frames, file: pages) never does.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// IsJSON reports whether the request says its body is JSON. Web pages can
// send text/plain, form and multipart bodies anywhere without asking;
// application/json needs a CORS preflight, which these servers never
// grant.
func IsJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// JSONOnly refuses requests whose body is not declared application/json
// with 415 before h reads it.
func JSONOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsJSON(r) {
			Error(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q refused: send application/json", r.Header.Get("Content-Type")))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// IsLoopback reports whether a listen address (host:port) binds only the
// loopback interface: "localhost" or a loopback IP. An empty host (all
// interfaces) is not loopback. Servers that would expose something
// without authentication beyond loopback refuse such an address.
func IsLoopback(listen string) (bool, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, fmt.Errorf("%q: %w", listen, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
