// Package httpservetest attacks a server the way issue 13 measured it:
// many clients that send a request's headers and then never finish its
// body.
package httpservetest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// SlowBodies opens n connections to addr, each sending a POST to path with
// its headers and all of body but the last byte, and waits for the server
// to close them. Any connection still open after wait, or answered with a
// 2xx, fails the test.
func SlowBodies(t testing.TB, addr, path, body string, n int, wait time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			path, addr, len(body), body[:len(body)-1])
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(wait))
			b, err := io.ReadAll(c)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				errs <- fmt.Errorf("slow client %d: still connected after %v", i, wait)
			case strings.HasPrefix(string(b), "HTTP/1.1 2"):
				errs <- fmt.Errorf("slow client %d: answered without its whole body: %.40q", i, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Do sends one request as a web page or a rebinding attacker would shape
// it: hdr may carry Host (the Host header) besides ordinary headers.
// Redirects are not followed. It returns the status and the body.
func Do(t testing.TB, method, url, body string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}
