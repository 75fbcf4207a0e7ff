package api

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

func TestRESTEndpoints(t *testing.T) {
	ts := newTestServer(t, nil)
	type step struct {
		method, path, body string
		status             int
		want               string // substring of the answer
	}
	run := func(steps []step) {
		t.Helper()
		for _, s := range steps {
			st, b, _ := ts.do(t, s.method, s.path, s.body, ts.hmacSigned)
			if st != s.status || !strings.Contains(string(b), s.want) {
				t.Fatalf("%s %s %s: %d %s, want %d containing %q", s.method, s.path, s.body, st, b, s.status, s.want)
			}
		}
	}
	run([]step{
		{"POST", "/v1/rooms", `{"name":"r","max_participants":5,"metadata":"m","empty_timeout":30}`, 201, `"empty_timeout":30`},
		{"POST", "/v1/rooms", `{"name":"r"}`, 409, `"conflict"`},
		{"POST", "/v1/rooms", `{"name":"r2","extra":1}`, 400, `unknown field`},
		{"POST", "/v1/rooms", `{"name":"r2","max_participants":"x"}`, 400, `max_participants`},
		{"POST", "/v1/rooms", `{"name":""}`, 400, `room is required`},
		{"POST", "/v1/rooms", `{"name":"r2"} {}`, 400, `after the value`},
		{"POST", "/v1/rooms", ``, 400, `body is required`},
		{"GET", "/v1/rooms", ``, 200, `"name":"r"`},
		{"GET", "/v1/rooms/r", ``, 200, `"max_participants":5`},
		{"GET", "/v1/rooms/nope", ``, 404, `"not_found"`},
	})
	ts.b.addParticipant("r", "PA_1")
	run([]step{
		{"GET", "/v1/rooms/r/participants", ``, 200, `"PA_1"`},
		{"GET", "/v1/rooms/r/participants/PA_1", ``, 200, `"can_publish":true`},
		{"PATCH", "/v1/rooms/r/participants/PA_1", `{"can_publish":false}`, 200, `"can_publish":false,"can_subscribe":true`},
		{"PATCH", "/v1/rooms/r/participants/PA_1", `{}`, 400, `at least one`},
		{"POST", "/v1/rooms/r/participants/PA_1/tracks/TR_1/mute", `{"muted":true}`, 200, `"muted":true`},
		{"POST", "/v1/rooms/r/participants/PA_1/tracks/TR_1/mute", `{}`, 400, `muted`},
		{"POST", "/v1/rooms/r/data", `{"payload":{"hello":1}}`, 200, `"delivered":1`},
		{"POST", "/v1/rooms/r/data", `{"to":["PA_1"],"payload":"x"}`, 200, `"delivered":1`},
		{"POST", "/v1/rooms/r/data", `{"to":["PA_1"]}`, 400, `payload is required`},
		{"DELETE", "/v1/rooms/r/participants/PA_1", ``, 200, `"removed":"PA_1"`},
		{"DELETE", "/v1/rooms/r/participants/PA_1", ``, 404, `not_found`},
		{"DELETE", "/v1/rooms/r", ``, 200, `"closed":"r"`},
		{"DELETE", "/v1/rooms/r", ``, 404, `not_found`},
		{"GET", "/v1/plugins", ``, 200, `"auth"`},
		{"DELETE", "/v1/plugins/auth", ``, 200, `"unloaded"`},
		{"DELETE", "/v1/plugins/none", ``, 404, `not_found`},
		{"POST", "/v1/plugins/reload", ``, 200, `"loaded"`},
		{"GET", "/v1/webhooks?dead=1&host=site.example", ``, 200, `"secret":"redacted"`},
		{"GET", "/v1/webhooks?dead=maybe", ``, 400, `dead must be`},
		{"POST", "/v1/webhooks/retry?host=site.example", ``, 200, `"retried":0`},
		{"DELETE", "/v1/webhooks?host=site.example", ``, 200, `"cleared":1`},
	})
	if ts.b.muted["TR_1"] != true || len(ts.b.data) != 2 || ts.b.data[0] != `{"hello":1}` {
		t.Fatalf("backend saw muted %v data %v", ts.b.muted, ts.b.data)
	}
	for _, s := range []step{
		{"GET", "/v1/signing-keys", ``, 200, `"k1"`},
		{"POST", "/v1/signing-keys/rotate", ``, 200, `"k2"`},
		{"POST", "/v1/signing-keys/retire", ``, 200, `"retired":1`},
	} {
		st, b, _ := ts.do(t, s.method, s.path, s.body, adminBearer)
		if st != s.status || !strings.Contains(string(b), s.want) {
			t.Fatalf("%s %s: %d %s", s.method, s.path, st, b)
		}
	}
	// Plugin upload: multipart like the admin API.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("module", "p.wasm")
	fw.Write([]byte("\x00asm"))
	mw.Close()
	st, b, _ := ts.do(t, "PUT", "/v1/plugins/p", body.String(), func(r *http.Request, bb []byte) {
		r.Header.Set("Content-Type", mw.FormDataContentType())
		ts.hmacSigned(r, bb)
	})
	if st != 200 || !strings.Contains(string(b), `"bytes":4`) {
		t.Fatalf("plugin load: %d %s", st, b)
	}
}

func TestMissingPartsAreUnavailable(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, d *Deps) { d.Rooms, d.Webhooks, d.Plugins = nil, nil, nil })
	for _, p := range []string{"/v1/rooms", "/v1/webhooks", "/v1/plugins"} {
		st, b, _ := ts.do(t, "GET", p, "", ts.hmacSigned)
		if st != http.StatusServiceUnavailable || errCode(t, b) != core.CodeUnavailable {
			t.Fatalf("%s: %d %s", p, st, b)
		}
	}
}

// ownerMap is a Cluster whose rooms belong to the URLs it names.
type ownerMap map[string]string

func (o ownerMap) RoomOwner(_ context.Context, room string) (string, bool, error) {
	u, ok := o[room]
	return u, ok, nil
}

func TestForwardToTheOwner(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	owner := newTestServer(t, func(_ *Config, d *Deps) { d.ForwardKey, d.NodeID, d.AdminToken = key, "owner", "owner-admin-token" })
	owner.b.CreateRoom(context.Background(), "far", RoomOptions{})
	owner.b.addParticipant("far", "PA_9")
	entry := newTestServer(t, func(_ *Config, d *Deps) {
		d.ForwardKey, d.NodeID = key, "entry"
		d.Cluster = ownerMap{"far": ""}
	})
	entry.api.deps.Cluster = ownerMap{"far": owner.URL}
	// The entry node knows the caller's key; the owner needs none (the
	// node signature vouches for it).
	st, b, _ := entry.do(t, "PATCH", "/v1/rooms/far/participants/PA_9", `{"can_subscribe":false}`, entry.hmacSigned)
	if st != 200 || !strings.Contains(string(b), `"can_subscribe":false`) {
		t.Fatalf("forwarded update: %d %s", st, b)
	}
	if p, _ := owner.b.GetParticipant(context.Background(), "far", "PA_9"); p.Grants.CanSubscribe {
		t.Fatal("owner not updated")
	}
	st, b, _ = entry.do(t, "GET", "/v1/rooms/far/participants/nope", "", entry.hmacSigned)
	if st != 404 || errCode(t, b) != core.CodeNotFound {
		t.Fatalf("forwarded error: %d %s", st, b)
	}
	// Admin through forwarding: the owner's admin token differs.
	st, b, _ = entry.do(t, "DELETE", "/v1/rooms/far", "", adminBearer)
	if st != 200 {
		t.Fatalf("forwarded close as admin: %d %s", st, b)
	}
	// A forwarded header signed with another key is refused.
	wrong := &Server{cfg: DefaultConfig(), deps: Deps{ForwardKey: bytes.Repeat([]byte{8}, 32), NodeID: "evil", Client: http.DefaultClient}, log: entry.api.log}
	_, err := wrong.forward(context.Background(), owner.URL, principal{id: AdminPrincipal}, "room.list", &listRooms{})
	if core.CodeOf(err) != core.CodeInvalidToken {
		t.Fatalf("wrong forward key: %v", err)
	}
	// A node without a forward key refuses forwarded requests.
	plain := newTestServer(t, nil)
	_, err = entry.api.forward(context.Background(), plain.URL, principal{id: AdminPrincipal}, "room.list", &listRooms{})
	if core.CodeOf(err) != core.CodeInvalidToken {
		t.Fatalf("node without key: %v", err)
	}
}

func TestTokenHelpersRoundTrip(t *testing.T) {
	ts := newTestServer(t, nil)
	now := time.Now()
	id, err := ts.api.verifyToken(NewToken(ts.key.ID, ts.key.Secret, time.Hour, now), now)
	if err != nil || id != ts.key.ID {
		t.Fatal(id, err)
	}
	// Query strings are signed: a changed one fails.
	req, _ := http.NewRequest("GET", ts.URL+"/v1/webhooks?host=a", nil)
	SignRequest(req, nil, ts.key.ID, ts.key.Secret, now)
	req.URL.RawQuery = url.Values{"host": {"b"}}.Encode()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("changed query: %d", resp.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.MaxActions, c.ActionTimeout = 0, 2*c.RequestTimeout
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "max_actions") || !strings.Contains(err.Error(), "action_timeout") {
		t.Fatalf("%v", err)
	}
}
