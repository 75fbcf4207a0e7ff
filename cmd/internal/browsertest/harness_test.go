package browsertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// server is the `parley serve --dev` process every test in this package
// uses; each test picks its own room.
var server struct {
	once sync.Once
	err  error
	base string // http://127.0.0.1:port
	cmd  *exec.Cmd
	dir  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if server.cmd != nil {
		_ = server.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = server.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = server.cmd.Process.Kill()
		}
	}
	if server.dir != "" {
		_ = os.RemoveAll(server.dir)
	}
	os.Exit(code)
}

// parleyServer builds the real binary once and starts it in development
// mode on free ports (HTTP, WebTransport, media).
func parleyServer(t *testing.T) string {
	t.Helper()
	server.once.Do(func() { server.err = startServer() })
	if server.err != nil {
		t.Fatalf("parley serve: %v", server.err)
	}
	return server.base
}

func startServer() error {
	dir, err := os.MkdirTemp("", "parley-browsertest-")
	if err != nil {
		return err
	}
	server.dir = dir
	bin := filepath.Join(dir, "parley")
	build := exec.Command("go", "build", "-o", bin, "github.com/parleyhq/parley/cmd/parley")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build: %w\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--dev", "--http-addr", "127.0.0.1:0", "--webtransport-addr", "127.0.0.1:0",
		"--media-port", "0", "--data-dir", filepath.Join(dir, "data"), "--log-level", logLevel())
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	server.cmd = cmd
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "open:" {
			server.base = f[1]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if server.base == "" {
		return errors.New("serve did not print the URL to open")
	}
	return nil
}

func logLevel() string {
	if os.Getenv("PARLEY_TEST_DEBUG") != "" {
		return "debug"
	}
	return "warn"
}

// chromium finds the browser: $PARLEY_CHROMIUM, or Debian's package.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PARLEY_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("PARLEY_CHROMIUM=%s: %v (unset it to use Debian's chromium, which `make deps` installs)", p, err)
		}
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("chromium is not installed: run `make deps` (it installs Debian's chromium and chromium-driver with apt), " +
		"or set PARLEY_CHROMIUM to a Chromium binary")
	return ""
}

// browser is one headless Chromium with a fresh profile.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// The flags of shared/BROWSER-TESTING.md, plus autoplay without a gesture
// and no throttling of background tabs (the tests drive several tabs).
func browserFlags(dir string) []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 800)}
	for _, f := range []string{
		"headless", "no-sandbox", "disable-gpu", "no-first-run", "no-default-browser-check",
		"disable-background-networking", "disable-component-update", "disable-sync", "disable-default-apps",
		"disable-extensions", "mute-audio", "use-fake-device-for-media-stream", "use-fake-ui-for-media-stream",
		"allow-loopback-in-peer-connection", "disable-dev-shm-usage", "disable-background-timer-throttling",
		"disable-renderer-backgrounding", "disable-backgrounding-occluded-windows",
	} {
		opts = append(opts, chromedp.Flag(f, true))
	}
	return append(opts,
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns,Translate"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium(t))}, browserFlags(t.TempDir())...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: bctx}
}

// page is one tab, with everything its console and log reported.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu     sync.Mutex
	errors []string
	lines  []string
}

func (b *browser) newPage(name string) *page {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	p := &page{t: b.t, name: name, ctx: ctx}
	if err := chromedp.Listen(ctx, p.onEvent); err != nil {
		b.t.Fatalf("page %s: %v", name, err)
	}
	b.t.Cleanup(func() {
		if b.t.Failed() || os.Getenv("PARLEY_TEST_DEBUG") != "" {
			p.dump()
		}
	})
	return p
}

// onEvent records console calls, exceptions and browser log entries (where
// network failures such as a WebTransport handshake's cause appear).
func (p *page) onEvent(ev any) {
	var line string
	isErr := false
	switch ev := ev.(type) {
	case *cdpruntime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				parts = append(parts, strings.Trim(string(a.Value), `"`))
			} else {
				parts = append(parts, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
		isErr = ev.Type == cdpruntime.ConsoleAPICalledTypeError || ev.Type == cdpruntime.ConsoleAPICalledTypeAssert
	case *cdpruntime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		line, isErr = "exception: "+desc, true
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		line = fmt.Sprintf("log %s/%s: %s %s", e.Source, e.Level, e.Text, e.URL)
		isErr = e.Level == cdplog.EntryLevelError
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, time.Now().Format("15:04:05.000 ")+line)
	if isErr {
		p.errors = append(p.errors, line)
	}
}

func (p *page) dump() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t.Logf("page %s console and log (%d lines):\n  %s", p.name, len(p.lines), strings.Join(p.lines, "\n  "))
}

// consoleErrors returns the errors recorded so far.
func (p *page) consoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

func (p *page) navigate(url string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("page %s: navigate %s: %v", p.name, url, err)
	}
}

// eval evaluates expr (awaiting a promise) into a T.
func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// stats is what the demo page's parleyDemo.stats() reports.
type stats struct {
	State        string   `json:"state"`
	Transport    string   `json:"transport"`
	Participants []string `json:"participants"`
	Video        struct {
		FramesDecoded   int `json:"framesDecoded"`
		PacketsReceived int `json:"packetsReceived"`
	} `json:"video"`
	Audio struct {
		PacketsReceived int `json:"packetsReceived"`
		BytesReceived   int `json:"bytesReceived"`
	} `json:"audio"`
	Tiles []struct {
		Key        string `json:"key"`
		Name       string `json:"name"`
		VideoWidth int    `json:"videoWidth"`
		NoVideo    bool   `json:"novideo"`
	} `json:"tiles"`
}

func (p *page) stats() stats {
	p.t.Helper()
	s, err := eval[stats](p, "parleyDemo.stats()")
	if err != nil {
		p.t.Fatalf("page %s: stats: %v", p.name, err)
	}
	return s
}

// waitStats polls the page's stats until cond holds.
func (p *page) waitStats(timeout time.Duration, what string, cond func(stats) bool) stats {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := p.stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("page %s: timed out after %s waiting for %s; last stats %+v", p.name, timeout, what, s)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// screenshot saves a PNG of the page under the artifacts directory and
// returns its path.
func (p *page) screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(p.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot saved: %s", path)
	return path
}

// artifactDir is $PARLEY_ARTIFACTS, or parley-browser-artifacts in the
// temp dir; it outlives the test so the screenshots can be looked at.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("PARLEY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "parley-browser-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// repoRoot is the module root (for docs/img).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}
