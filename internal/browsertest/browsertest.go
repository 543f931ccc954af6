// Package browsertest starts a real headless Chromium for tests of pages
// (the store display, the backtest report): without Chromium a test
// skips, unless POSGUARD_INTEGRATION=1 (CI), where that is a failure.
package browsertest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/internal/testenv"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Start starts headless Chromium for one test, with a window of width by
// height pixels, and stops it when the test ends. Any uncaught exception
// in a page's script fails the test, even when its assertions pass.
func Start(t *testing.T, width, height int) context.Context {
	t.Helper()
	_, err := os.Stat(ChromiumPath)
	testenv.Need(t, "Chromium", err)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// No timeout on the context of the first Run: it would stop the
	// browser. Each step gets its own timeout instead (see Run).
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		// Closing waits for the browser process; never let a stuck one
		// hang the test binary.
		closed := make(chan struct{})
		go func() { cancelCtx(); cancelAlloc(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(15 * time.Second):
			t.Log("chromium did not exit within 15s")
		}
	})
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not start within 30s")
	}
	var (
		mu         sync.Mutex
		exceptions []string
	)
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { // runs before the browser is closed above
		mu.Lock()
		defer mu.Unlock()
		for _, e := range exceptions {
			t.Errorf("page script exception: %s", e)
		}
	})
	return ctx
}

// Run runs steps with a timeout and fails the test with the page's
// content when one fails.
func Run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		html, _ := chromedp.Run(hctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("%s: %v\npage: %.4000s", what, err, html)
	}
}

// Get runs one action that returns a value.
func Get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}
