package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// apiStub answers /v1/webhooks as the node's API does and records the
// requests the CLI made.
type apiStub struct {
	mu   sync.Mutex
	seen []string
}

func (a *apiStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
	a.mu.Unlock()
	switch {
	case r.Method == "GET" && r.URL.Path == "/v1/webhooks":
		h := core.Webhook{ID: "msg_1", Seq: 7, Room: "acme/lobby", Event: "participant.joined", URL: "http://a.example/h",
			Host: "a.example", Enqueued: time.Now().Add(-time.Minute)}
		if r.URL.Query().Get("dead") == "1" {
			h.Attempts, h.LastError, h.Died = 1, "POST: 400 Bad Request", time.Now()
		}
		json.NewEncoder(w).Encode(map[string]any{"webhooks": []core.Webhook{h}})
	case r.Method == "DELETE" && r.URL.Path == "/v1/webhooks":
		w.Write([]byte(`{"cleared": 3}`))
	case r.Method == "POST" && r.URL.Path == "/v1/webhooks/retry":
		w.Write([]byte(`{"retried": 2}`))
	default:
		http.Error(w, `{"error":"no"}`, http.StatusNotFound)
	}
}

func TestWebhooksCLI(t *testing.T) {
	isolate(t)
	stub := &apiStub{}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	cli := func(args ...string) string {
		t.Helper()
		out, errs, code := runCmd(t, append(args, "--http-addr", addr, "--admin-token", "tok")...)
		if code != 0 {
			t.Fatalf("parley %v: exit %d: %s", args, code, errs)
		}
		return out
	}
	if out := cli("webhooks", "list"); !strings.Contains(out, "msg_1") || !strings.Contains(out, "acme/lobby") ||
		!strings.Contains(out, "1 pending webhooks") {
		t.Errorf("list: %s", out)
	}
	if out := cli("webhooks", "list", "--dead", "--host", "a.example"); !strings.Contains(out, "400 Bad Request") ||
		!strings.Contains(out, "1 dead webhooks") {
		t.Errorf("list --dead: %s", out)
	}
	if out := cli("webhooks", "list", "--json"); !json.Valid([]byte(out)) {
		t.Errorf("list --json is not JSON: %s", out)
	}
	if out := cli("webhooks", "clear", "--host", "a.example"); out != "cleared 3 webhooks\n" {
		t.Errorf("clear: %q", out)
	}
	if out := cli("webhooks", "retry", "--host", "a.example"); out != "retried 2 webhooks\n" {
		t.Errorf("retry: %q", out)
	}
	want := []string{
		"GET /v1/webhooks Bearer tok",
		"GET /v1/webhooks?dead=1&host=a.example Bearer tok",
		"GET /v1/webhooks Bearer tok",
		"DELETE /v1/webhooks?host=a.example Bearer tok",
		"POST /v1/webhooks/retry?host=a.example Bearer tok",
	}
	if strings.Join(stub.seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(stub.seen, "\n"), strings.Join(want, "\n"))
	}
	if _, errs, code := runCmd(t, "webhooks", "frobnicate", "--http-addr", addr, "--admin-token", "tok"); code == 0 ||
		!strings.Contains(errs, "unknown webhooks subcommand") {
		t.Errorf("unknown subcommand: exit %d: %s", code, errs)
	}
	if _, errs, code := runCmd(t, "webhooks"); code == 0 || !strings.Contains(errs, "Usage: parley webhooks") {
		t.Errorf("no subcommand: exit %d: %s", code, errs)
	}
	srv.Close()
	if _, errs, code := runCmd(t, "webhooks", "list", "--http-addr", addr, "--admin-token", "tok"); code == 0 ||
		!strings.Contains(errs, "is the node running") {
		t.Errorf("node down: exit %d: %s", code, errs)
	}
}

// FuzzWebhooksAnswer feeds arbitrary API answers to the CLI's decoders:
// they return an error or print, never panic.
func FuzzWebhooksAnswer(f *testing.F) {
	for _, s := range []string{`{"webhooks":[{"id":"a","seq":1,"enqueued":"2026-01-02T15:04:05Z"}]}`, `[]`, `[{"id":"x","died":"2026-01-02T15:04:05Z","last_error":"a\nb"}]`,
		`{"cleared":3}`, `{"retried":-1}`, `{"n":1e300}`, `null`, `{`, ``, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		_ = printWebhooks(&out, b, false)
		_ = printWebhooks(&out, b, true)
		_ = printCount(&out, b, "cleared")
	})
}

// The webhook delivery settings are flags, PARLEY_* variables and config
// file keys like every other.
func TestWebhookSettings(t *testing.T) {
	dir := isolate(t)
	file := dir + "/p.toml"
	os.WriteFile(file, []byte("webhook-backoff-max = \"30s\"\nwebhook-attempt-timeout = \"3s\"\n"), 0o600)
	t.Setenv("PARLEY_WEBHOOK_PER_HOST", "2")
	m := effective(t, "--config", file, "--webhook-max-age", "1h", "--webhook-attempt-timeout", "2s")
	w := m["webhooks"].(map[string]any)
	want := map[string]float64{"MaxAge": float64(time.Hour), "AttemptTimeout": float64(2 * time.Second),
		"BackoffMax": float64(30 * time.Second), "PerHost": 2}
	for k, v := range want {
		if w[k] != v {
			t.Errorf("%s = %v, want %v", k, w[k], v)
		}
	}
	if _, errs, code := runCmd(t, "config", "--webhook-backoff-base", "1m", "--webhook-backoff-max", "1s"); code == 0 ||
		!strings.Contains(errs, "backoff") {
		t.Errorf("base above max: exit %d: %s", code, errs)
	}
}
