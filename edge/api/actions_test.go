package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// postActions sends a signed batch and returns the response, unread.
func (ts *testServer) postActions(t *testing.T, ctype, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+"/v1/actions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ts.hmacSigned(req, []byte(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readResults(t *testing.T, r io.Reader) map[string]ActionResult {
	t.Helper()
	out := map[string]ActionResult{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var res ActionResult
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		key := res.ID
		if key == "" {
			key = "line" + string(rune('0'+res.Line))
		}
		out[key] = res
	}
	return out
}

func TestActionsStreamAsTheyComplete(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.b.CreateRoom(context.Background(), "slow-1", RoomOptions{})
	body := `{"id":"slow","action":"room.get","params":{"room":"slow-1"}}
{"id":"fast","action":"room.create","params":{"room":"a","max_participants":3}}
`
	resp := ts.postActions(t, "application/x-ndjson", body, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	// The fast action's line arrives while the slow one still blocks.
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var first ActionResult
	if err := json.Unmarshal(line, &first); err != nil || first.ID != "fast" || !first.OK {
		t.Fatalf("first line %s (%v)", line, err)
	}
	close(ts.b.release)
	line, err = br.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var second ActionResult
	if err := json.Unmarshal(line, &second); err != nil || second.ID != "slow" || !second.OK {
		t.Fatalf("second line %s (%v)", line, err)
	}
}

func TestActionsFailuresStayPerAction(t *testing.T) {
	ts := newTestServer(t, nil)
	body := `[{"id":"1","action":"room.create","params":{"room":"r"}},
{"id":"2","action":"room.close","params":{"room":"missing"}},
{"id":"3","action":"no.such"},
{"id":"4","action":"room.create","params":{"room":"r2","bogus":1}},
{"id":"5","action":"room.list"}]`
	resp := ts.postActions(t, "application/json", body, nil)
	res := readResults(t, resp.Body)
	if len(res) != 5 {
		t.Fatalf("results %+v", res)
	}
	want := map[string]core.Code{"2": core.CodeNotFound, "3": core.CodeUnknownType, "4": core.CodeBadRequest}
	for id, r := range res {
		if code, bad := want[id]; bad {
			if r.OK || r.Error == nil || r.Error.Code != code {
				t.Errorf("%s: %+v, want %s", id, r, code)
			}
		} else if !r.OK {
			t.Errorf("%s failed: %+v", id, r.Error)
		}
	}
}

func TestActionsMalformedLines(t *testing.T) {
	ts := newTestServer(t, nil)
	body := `{"id":"a","action":"room.create","params":{"room":"r"}}
{"id":"b", broken
not json at all

{"action":"room.list"}
{"id":"a","action":"room.list"}
{"id":"c","action":"room.list"}
`
	resp := ts.postActions(t, "application/x-ndjson", body, nil)
	sc := bufio.NewScanner(resp.Body)
	lines := map[int]ActionResult{}
	okIDs := map[string]bool{}
	for sc.Scan() {
		var r ActionResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.OK {
			okIDs[r.ID] = true
		} else {
			lines[r.Line] = r
		}
	}
	if !okIDs["a"] || !okIDs["c"] || len(okIDs) != 2 {
		t.Fatalf("good actions: %v", okIDs)
	}
	for _, l := range []int{2, 3, 5, 6} {
		r, ok := lines[l]
		if !ok || r.Error == nil || !strings.Contains(r.Error.Message, "line") {
			t.Errorf("line %d: %+v", l, r)
		}
	}
	if lines[2].ID != "" || lines[2].Error.Code != core.CodeMalformed {
		t.Errorf("line 2: %+v", lines[2])
	}
}

func TestActionsLimits(t *testing.T) {
	t.Run("max actions", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *Deps) { c.MaxActions = 2 })
		resp := ts.postActions(t, "", strings.Repeat(`{"id":"x","action":"room.list"}`+"\n", 3), nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || errCode(t, b) != core.CodeMessageTooLarge {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("payload bytes", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *Deps) { c.MaxPayloadBytes = 100 })
		resp := ts.postActions(t, "", strings.Repeat(`{"id":"x","action":"room.list"}`+"\n", 5), nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || errCode(t, b) != core.CodeMessageTooLarge {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("empty and bad content type", func(t *testing.T) {
		ts := newTestServer(t, nil)
		for _, tc := range []struct{ ctype, body string }{{"", "\n\n"}, {"text/plain", `{"id":"x","action":"room.list"}`}, {"application/json", `{"id":"x"}`}} {
			resp := ts.postActions(t, tc.ctype, tc.body, nil)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || errCode(t, b) != core.CodeBadRequest {
				t.Fatalf("%q %q: %d %s", tc.ctype, tc.body, resp.StatusCode, b)
			}
		}
	})
	t.Run("action timeout", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *Deps) { c.ActionTimeout = 100 * time.Millisecond })
		ts.b.CreateRoom(context.Background(), "slow-1", RoomOptions{})
		resp := ts.postActions(t, "", `{"id":"s","action":"room.get","params":{"room":"slow-1"}}`+"\n"+`{"id":"f","action":"room.list"}`, nil)
		res := readResults(t, resp.Body)
		if r := res["s"]; r.OK || r.Error.Code != core.CodeTimeout || !strings.Contains(r.Error.Message, "action timeout") {
			t.Fatalf("slow: %+v", r)
		}
		if !res["f"].OK {
			t.Fatalf("fast: %+v", res["f"])
		}
	})
	t.Run("idle timeout while running", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *Deps) { c.IdleTimeout = 150 * time.Millisecond })
		ts.b.CreateRoom(context.Background(), "slow-1", RoomOptions{})
		resp := ts.postActions(t, "", `{"id":"s","action":"room.get","params":{"room":"slow-1"}}`, nil)
		res := readResults(t, resp.Body)
		if r := res["s"]; r.OK || r.Error.Code != core.CodeTimeout || !strings.Contains(r.Error.Message, "idle timeout") {
			t.Fatalf("slow: %+v", r)
		}
	})
	t.Run("request timeout while running", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *Deps) {
			c.RequestTimeout, c.ActionTimeout = 200*time.Millisecond, 200*time.Millisecond
			c.Concurrency = 1
		})
		ts.b.CreateRoom(context.Background(), "slow-1", RoomOptions{})
		resp := ts.postActions(t, "", `{"id":"s","action":"room.get","params":{"room":"slow-1"}}`+"\n"+`{"id":"t","action":"room.list"}`, nil)
		res := readResults(t, resp.Body)
		for _, id := range []string{"s", "t"} {
			if r := res[id]; r.OK || r.Error.Code != core.CodeTimeout {
				t.Fatalf("%s: %+v", id, r)
			}
		}
	})
	t.Run("idle body", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *Deps) { c.IdleTimeout = 200 * time.Millisecond })
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req, _ := http.NewRequest("POST", ts.URL+"/v1/actions", nil)
		ts.hmacSigned(req, nil)
		// The headers and one byte of a 1000-byte body, then nothing.
		fmt.Fprintf(conn, "POST /v1/actions HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 1000\r\n\r\nx", req.Header.Get("Authorization"))
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || errCode(t, b) != core.CodeTimeout {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
}

func TestActionsConcurrencyLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.Concurrency = 2 })
	var lines []string
	for i := range 3 {
		name := "slow-" + string(rune('a'+i))
		ts.b.CreateRoom(context.Background(), name, RoomOptions{})
		lines = append(lines, `{"id":"`+name+`","action":"room.get","params":{"room":"`+name+`"}}`)
	}
	done := make(chan map[string]ActionResult)
	go func() {
		resp := ts.postActions(t, "", strings.Join(lines, "\n"), nil)
		done <- readResults(t, resp.Body)
	}()
	time.Sleep(100 * time.Millisecond) // let two start; the third waits for a slot
	close(ts.b.release)
	res := <-done
	if len(res) != 3 {
		t.Fatalf("%+v", res)
	}
}

func TestIdempotentReplay(t *testing.T) {
	ts := newTestServer(t, nil)
	body := `{"id":"1","action":"room.create","params":{"room":"r"}}` + "\n"
	hdr := map[string]string{IdempotencyHeader: "key-1"}
	first := ts.postActions(t, "", body, hdr)
	b1, _ := io.ReadAll(first.Body)
	again := ts.postActions(t, "", body, hdr)
	b2, _ := io.ReadAll(again.Body)
	if string(b1) != string(b2) || again.Header.Get(ReplayedHeader) != "true" || first.Header.Get(ReplayedHeader) != "" {
		t.Fatalf("first %s, replay %s (%q)", b1, b2, again.Header.Get(ReplayedHeader))
	}
	if again.Header.Get("Content-Type") != "application/x-ndjson" || again.StatusCode != http.StatusOK {
		t.Fatalf("replay %d %s", again.StatusCode, again.Header.Get("Content-Type"))
	}
	if n := ts.b.count("create"); n != 1 {
		t.Fatalf("created %d times", n)
	}
	other := ts.postActions(t, "", `{"id":"1","action":"room.create","params":{"room":"r2"}}`, hdr)
	b3, _ := io.ReadAll(other.Body)
	if other.StatusCode != http.StatusUnprocessableEntity || errCode(t, b3) != core.CodeConflict {
		t.Fatalf("reuse with another body: %d %s", other.StatusCode, b3)
	}
	// Another caller's identical key is its own.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/actions", strings.NewReader(body))
	req.Header.Set(IdempotencyHeader, "key-1")
	adminBearer(req, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b4, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get(ReplayedHeader) != "" || !strings.Contains(string(b4), `"conflict"`) {
		t.Fatalf("admin with the same key: %s", b4)
	}
	// REST endpoints honour the key too.
	st, rb1, _ := ts.do(t, "POST", "/v1/rooms", `{"name":"x"}`, func(r *http.Request, b []byte) { r.Header.Set(IdempotencyHeader, "k2"); ts.hmacSigned(r, b) })
	st2, rb2, h2 := ts.do(t, "POST", "/v1/rooms", `{"name":"x"}`, func(r *http.Request, b []byte) { r.Header.Set(IdempotencyHeader, "k2"); ts.hmacSigned(r, b) })
	if st != http.StatusCreated || st2 != st || string(rb1) != string(rb2) || h2.Get(ReplayedHeader) != "true" {
		t.Fatalf("REST replay: %d %s / %d %s", st, rb1, st2, rb2)
	}
}

func TestIdempotentRetryWaitsForTheFirst(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.b.CreateRoom(context.Background(), "slow-1", RoomOptions{})
	body := `{"id":"s","action":"room.get","params":{"room":"slow-1"}}`
	hdr := map[string]string{IdempotencyHeader: "wait"}
	var wg sync.WaitGroup
	bodies := make([]string, 2)
	replayed := make([]string, 2)
	first := ts.postActions(t, "", body, hdr) // headers arrive at once; its action blocks
	wg.Go(func() {
		b, _ := io.ReadAll(first.Body)
		bodies[0], replayed[0] = string(b), first.Header.Get(ReplayedHeader)
	})
	wg.Go(func() {
		resp := ts.postActions(t, "", body, hdr)
		b, _ := io.ReadAll(resp.Body)
		bodies[1], replayed[1] = string(b), resp.Header.Get(ReplayedHeader)
	})
	time.Sleep(100 * time.Millisecond) // the retry is polling by now
	close(ts.b.release)
	wg.Wait()
	if bodies[0] != bodies[1] || !strings.Contains(bodies[0], `"ok":true`) || replayed[0] != "" || replayed[1] != "true" {
		t.Fatalf("bodies %q, replayed %q", bodies, replayed)
	}
}

func TestIdempotentRetryGets409WhenTheFirstOutlastsIt(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) {
		c.RequestTimeout, c.ActionTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	ts.b.CreateRoom(context.Background(), "slow-1", RoomOptions{})
	ts.api.idem.ReserveIdempotency(context.Background(), core.IdempotencyRecord{Key: ts.key.ID + ":busy",
		Hash: requestHash("POST", "/v1/actions", []byte(`{"id":"s","action":"room.list"}`))}, ts.api.cfg.IdempotencyTTL)
	resp := ts.postActions(t, "", `{"id":"s","action":"room.list"}`, map[string]string{IdempotencyHeader: "busy"})
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusConflict || errCode(t, b) != core.CodeConflict {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestIdempotentRetryRunsWhenTheFirstWasAbandoned(t *testing.T) {
	ts := newTestServer(t, nil)
	body := `{"id":"c","action":"room.create","params":{"room":"r"}}`
	// A record reserved by a node that stopped long ago (it began a day
	// minus an hour ago) and never completed.
	ts.api.idem.ReserveIdempotency(context.Background(), core.IdempotencyRecord{Key: ts.key.ID + ":crashed", Owner: "gone",
		Hash: requestHash("POST", "/v1/actions", []byte(body))}, time.Hour)
	resp := ts.postActions(t, "", body, map[string]string{IdempotencyHeader: "crashed"})
	res := readResults(t, resp.Body)
	if !res["c"].OK || resp.Header.Get(ReplayedHeader) != "" || ts.b.count("create") != 1 {
		t.Fatalf("%+v", res)
	}
	again := ts.postActions(t, "", body, map[string]string{IdempotencyHeader: "crashed"})
	io.Copy(io.Discard, again.Body)
	if again.Header.Get(ReplayedHeader) != "true" || ts.b.count("create") != 1 {
		t.Fatalf("the rerun was not kept: replayed %q, %d creates", again.Header.Get(ReplayedHeader), ts.b.count("create"))
	}
}

func TestMemoryIdempotencyBounded(t *testing.T) {
	now := time.Now()
	m := NewMemoryIdempotency(2, func() time.Time { return now })
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if _, ok, err := m.ReserveIdempotency(ctx, core.IdempotencyRecord{Key: k}, time.Minute); !ok || err != nil {
			t.Fatal(k, ok, err)
		}
	}
	if _, _, err := m.ReserveIdempotency(ctx, core.IdempotencyRecord{Key: "c"}, time.Minute); core.CodeOf(err) != core.CodeRateLimited {
		t.Fatalf("all running: %v", err)
	}
	m.CompleteIdempotency(ctx, core.IdempotencyRecord{Key: "a", Status: 200})
	if _, ok, err := m.ReserveIdempotency(ctx, core.IdempotencyRecord{Key: "c"}, time.Minute); !ok || err != nil {
		t.Fatalf("after one finished: %v %v", ok, err)
	}
	if _, ok := m.Idempotency("a"); ok {
		t.Fatal("finished record not evicted")
	}
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","action":"room.list"}`,
		"{\"id\":\"1\",\"action\":\"room.create\",\"params\":{\"room\":\"r\",\"max_participants\":3}}\n\n{\"id\":\"2\"",
		`[{"id":"a","action":"data.send","params":{"room":"r","payload":null}},{"id":"b","action":"track.mute","params":{"room":"r","participant":"p","track":"t","muted":true}}]`,
		`[1,"x",null,{}]`, `[`, "\xff\xfe", `{"id":"x","action":"room.get","params":{"room":"\u0000"}}`,
		`{"id":"x","action":"participant.update","params":{"room":"r","participant":"p"}}`,
	} {
		f.Add(s, "")
		f.Add(s, "application/json")
		f.Add(s, "application/x-ndjson")
	}
	f.Fuzz(func(t *testing.T, body, ctype string) {
		items, err := parseBatch([]byte(body), ctype)
		if err != nil {
			if core.CodeOf(err) != core.CodeBadRequest {
				t.Fatalf("batch error with code %s: %v", core.CodeOf(err), err)
			}
			return
		}
		for _, it := range items {
			if it.line < 1 {
				t.Fatalf("line %d", it.line)
			}
			if (it.err == nil) == (it.prm == nil) {
				t.Fatalf("item %+v: exactly one of err and params must be set", it)
			}
			if it.err == nil {
				if err := it.prm.validate(); err != nil {
					t.Fatalf("accepted invalid params: %v", err)
				}
				if it.req.ID == "" {
					t.Fatal("accepted an action without id")
				}
			}
		}
	})
}
