package edge

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDemoPageAndSDKServed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil, nil)
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `src="/web/app.js"`},
		{"/web/app.js", "text/javascript", `from "/sdk/parley.js"`},
		{"/web/style.css", "text/css", ".tile"},
		{"/sdk/parley.js", "text/javascript", "export async function connect"},
		{"/sdk/transport.js", "text/javascript", "class WebTransportTransport"},
		{"/sdk/parley.d.ts", "text/plain", "export function connect"},
	} {
		rsp, err := http.Get(s.URL() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rsp.Body)
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusOK || !strings.HasPrefix(rsp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, rsp.StatusCode, rsp.Header.Get("Content-Type"), tc.contains, strings.Contains(string(b), tc.contains))
		}
	}
	for _, p := range []string{"/web/nope.js", "/sdk/embed.go", "/web/..%2fweb.go"} {
		rsp, err := http.Get(s.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rsp.StatusCode)
		}
	}
}
