package node_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/edge/api"
)

const apiAdminToken = "api-test-admin-token-0123456789"

// apiCaller calls a node's server API with an API key (HMAC-signed
// requests), or with the admin token when key is empty.
type apiCaller struct {
	t    testing.TB
	base string
	key  core.APIKey
	hdr  map[string]string
}

func (c apiCaller) on(n *node.Node) apiCaller { c.base = n.URL(); return c }

func (c apiCaller) with(k, v string) apiCaller {
	h := map[string]string{k: v}
	for k, v := range c.hdr {
		h[k] = v
	}
	c.hdr = h
	return c
}

// call sends one request; out (if not nil) gets the JSON answer.
func (c apiCaller) call(method, path, body string, out any) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	if c.key.ID == "" {
		req.Header.Set("Authorization", "Bearer "+apiAdminToken)
	} else {
		api.SignRequest(req, []byte(body), c.key.ID, c.key.Secret, time.Now())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: answer %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header, b
}

// must is call that fails the test unless the status is want.
func (c apiCaller) must(want int, method, path, body string, out any) []byte {
	c.t.Helper()
	st, _, b := c.call(method, path, body, out)
	if st != want {
		c.t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, st, b, want)
	}
	return b
}

// newAPIKey creates an API key through n's API with the admin token.
func newAPIKey(t testing.TB, n *node.Node) apiCaller {
	t.Helper()
	admin := apiCaller{t: t, base: n.URL()}
	var k core.APIKey
	admin.must(http.StatusCreated, "POST", "/v1/keys", `{"name":"e2e"}`, &k)
	return apiCaller{t: t, base: n.URL(), key: k}
}

// mediaStopped waits until c's callee stops receiving packets.
func mediaStopped(t *testing.T, c *call, what string) {
	t.Helper()
	eventually(t, 10*time.Second, what, func() bool {
		before := c.received.Load()
		time.Sleep(300 * time.Millisecond) // a window without packets (the caller sends every 10 ms)
		return c.received.Load() == before
	})
}

// callIDs returns the caller's participant id and its published track id.
func callIDs(t *testing.T, key apiCaller, room string) (caller, callee, track string) {
	t.Helper()
	var list struct {
		Participants []api.Participant `json:"participants"`
	}
	key.must(200, "GET", "/v1/rooms/"+room+"/participants", "", &list)
	for _, p := range list.Participants {
		switch p.Identity {
		case "caller":
			caller = p.ID
			if len(p.Tracks) == 1 {
				track = p.Tracks[0].ID
			}
		case "callee":
			callee = p.ID
		}
	}
	if caller == "" || callee == "" || track == "" {
		t.Fatalf("participants %+v", list.Participants)
	}
	return caller, callee, track
}

// exerciseRoom drives every room endpoint through key (possibly a node
// that does not host the room) against a running call in room.
func exerciseRoom(t *testing.T, key apiCaller, c *call, room string) {
	var r api.Room
	key.must(200, "GET", "/v1/rooms/"+room, "", &r)
	if r.Name != room || r.Participants != 2 || r.Tracks != 1 || r.MaxParticipants != 4 || r.Metadata != "from the API" {
		t.Fatalf("room %+v", r)
	}
	caller, callee, track := callIDs(t, key, room)
	var p api.Participant
	key.must(200, "GET", "/v1/rooms/"+room+"/participants/"+callee, "", &p)
	if p.Identity != "callee" || !p.Grants.CanSubscribe {
		t.Fatalf("participant %+v", p)
	}

	// Data from the server reaches the callee.
	key.must(200, "POST", "/v1/rooms/"+room+"/data", `{"to":["`+callee+`"],"payload":{"from":"backend"}}`, nil)
	eventually(t, 5*time.Second, "the server's data message at the callee", func() bool { return c.data.Load() == 1 })

	// Muting the caller's track stops its media; unmuting resumes it.
	key.must(200, "POST", "/v1/rooms/"+room+"/participants/"+caller+"/tracks/"+track+"/mute", `{"muted":true}`, nil)
	mediaStopped(t, c, "media to stop after the mute")
	key.must(200, "POST", "/v1/rooms/"+room+"/participants/"+caller+"/tracks/"+track+"/mute", `{"muted":false}`, nil)
	c.checkFlowing(t)

	// Revoking can_publish stops the caller's media.
	key.must(200, "PATCH", "/v1/rooms/"+room+"/participants/"+caller, `{"can_publish":false}`, &p)
	if p.Grants.CanPublish || !p.Grants.CanSubscribe {
		t.Fatalf("grants after PATCH: %+v", p.Grants)
	}
	mediaStopped(t, c, "media to stop after can_publish was revoked")

	// A batch of actions: results stream back, a bad one fails alone.
	resp := postActions(t, key, `{"id":"get","action":"room.get","params":{"room":"`+room+`"}}
{"id":"bad","action":"participant.get","params":{"room":"`+room+`","participant":"PA_nobody"}}
{"id":"grant","action":"participant.update","params":{"room":"`+room+`","participant":"`+caller+`","can_publish":true}}
`)
	if !resp["get"].OK || !resp["grant"].OK || resp["bad"].OK || resp["bad"].Error.Code != core.CodeNotFound {
		t.Fatalf("actions %+v", resp)
	}
	c.checkFlowing(t)

	// Removing the callee disconnects it.
	key.must(200, "DELETE", "/v1/rooms/"+room+"/participants/"+callee+"?reason=bye", "", nil)
	select {
	case <-c.b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the removed participant's client is still connected")
	}
	eventually(t, 5*time.Second, "the removed participant gone", func() bool {
		st, _, _ := key.call("GET", "/v1/rooms/"+room+"/participants/"+callee, "", nil)
		return st == http.StatusNotFound
	})

	// Closing the room ends the caller's session too.
	key.must(200, "DELETE", "/v1/rooms/"+room, "", nil)
	select {
	case <-c.a.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the caller is still connected after the room closed")
	}
}

// postActions sends a batch and collects its result lines by id.
func postActions(t *testing.T, key apiCaller, body string) map[string]api.ActionResult {
	t.Helper()
	st, _, b := key.with("Content-Type", "application/x-ndjson").call("POST", "/v1/actions", body, nil)
	if st != 200 {
		t.Fatalf("actions: %d %s", st, b)
	}
	out := map[string]api.ActionResult{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r api.ActionResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out[r.ID] = r
	}
	return out
}

// TestServerAPIOnANode drives a real node's server API against real
// clients in a call.
func TestServerAPIOnANode(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.HTTP.AdminToken = apiAdminToken; c.PluginDir = "none" })
	st, _, b := apiCaller{t: t, base: n.URL(), key: core.APIKey{ID: "AKNOPE", Secret: "x"}}.call("GET", "/v1/rooms", "", nil)
	if st != http.StatusUnauthorized || !strings.Contains(string(b), `"invalid_token"`) {
		t.Fatalf("unknown key: %d %s", st, b)
	}
	resp, err := http.Get(n.URL() + "/v1/rooms")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: %d", resp.StatusCode)
	}
	key := newAPIKey(t, n)
	key.must(201, "POST", "/v1/rooms", `{"name":"api-room","max_participants":4,"metadata":"from the API","empty_timeout":60}`, nil)
	c := startCall(t, n, "api-room")
	var list struct{ Rooms []api.Room }
	key.must(200, "GET", "/v1/rooms", "", &list)
	if len(list.Rooms) != 1 || list.Rooms[0].Name != "api-room" || list.Rooms[0].Participants != 2 {
		t.Fatalf("rooms %+v", list.Rooms)
	}
	exerciseRoom(t, key, c, "api-room")
	key.must(404, "GET", "/v1/rooms/api-room", "", nil)

	// Plugins, webhooks and signing keys answer too.
	key.must(200, "GET", "/v1/plugins", "", nil)
	key.must(200, "GET", "/v1/webhooks?dead=1", "", nil)
	admin := apiCaller{t: t, base: n.URL()}
	var sk struct{ Keys []api.SigningKeyInfo }
	admin.must(200, "POST", "/v1/signing-keys/rotate", "", nil)
	admin.must(200, "GET", "/v1/signing-keys", "", &sk)
	if len(sk.Keys) != 2 {
		t.Fatalf("signing keys after a rotation: %+v", sk.Keys)
	}
	admin.must(200, "POST", "/v1/signing-keys/retire", "", nil)

	// Revoked keys stop working at once; the key file keeps no revoked key.
	admin.must(200, "DELETE", "/v1/keys/"+key.key.ID, "", nil)
	if st, _, _ := key.call("GET", "/v1/rooms", "", nil); st != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d", st)
	}
}

// TestServerAPIOnACluster drives every room endpoint through nodes that do
// not host the room, and replays an Idempotency-Key on another node.
func TestServerAPIOnACluster(t *testing.T) {
	nodes := newTestCluster(t, 3, func(_ int, c *node.Config) { c.HTTP.AdminToken = apiAdminToken })
	key := newAPIKey(t, nodes[0])
	for _, n := range nodes {
		eventually(t, 5*time.Second, "the key replicated to "+n.ID(), func() bool { _, ok := n.Store().APIKey(key.key.ID); return ok })
	}
	// Created through n2, the room lives there.
	key.on(nodes[1]).must(201, "POST", "/v1/rooms", `{"name":"c-room","max_participants":4,"metadata":"from the API"}`, nil)
	// Asked at once through n3, whose replica may not have the claim yet,
	// the room is found on its owner.
	var got api.Room
	key.on(nodes[2]).must(200, "GET", "/v1/rooms/c-room", "", &got)
	if got.Node != nodes[1].ID() {
		t.Fatalf("room seen through n3: %+v", got)
	}
	c := startCall(t, nodes[1], "c-room")
	var list struct{ Rooms []api.Room }
	key.on(nodes[2]).must(200, "GET", "/v1/rooms", "", &list)
	if len(list.Rooms) != 1 || list.Rooms[0].Node != nodes[1].ID() || list.Rooms[0].Participants != 2 {
		t.Fatalf("rooms seen from n3: %+v", list.Rooms)
	}
	// Creating it again through another node is forwarded to its owner.
	if st, _, b := key.on(nodes[2]).call("POST", "/v1/rooms", `{"name":"c-room","max_participants":3}`, nil); st != http.StatusConflict {
		t.Fatalf("create again through n3: %d %s", st, b)
	}
	exerciseRoom(t, key.on(nodes[0]), c, "c-room")

	// An Idempotency-Key retried on another node replays the first answer.
	batch := `{"id":"mk","action":"room.create","params":{"room":"idem-room"}}` + "\n"
	idem := key.with(api.IdempotencyHeader, "create-idem-room").with("Content-Type", "application/x-ndjson")
	st, h1, b1 := idem.on(nodes[0]).call("POST", "/v1/actions", batch, nil)
	if st != 200 || !strings.Contains(string(b1), `"ok":true`) || h1.Get(api.ReplayedHeader) != "" {
		t.Fatalf("first: %d %s", st, b1)
	}
	st, h2, b2 := idem.on(nodes[2]).call("POST", "/v1/actions", batch, nil)
	if st != 200 || !bytes.Equal(b1, b2) || h2.Get(api.ReplayedHeader) != "true" {
		t.Fatalf("retry on n3: %d %s (replayed %q), first %s", st, b2, h2.Get(api.ReplayedHeader), b1)
	}
	if st, _, b := idem.on(nodes[1]).call("POST", "/v1/actions", strings.Replace(batch, "idem-room", "other", 1), nil); st != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %d %s", st, b)
	}

	// Plugins, webhooks and signing keys work through any node.
	key.on(nodes[2]).must(200, "GET", "/v1/plugins", "", nil)
	key.on(nodes[1]).must(200, "GET", "/v1/webhooks?dead=1", "", nil)
	key.on(nodes[0]).must(200, "POST", "/v1/webhooks/retry", "", nil)
	admin := apiCaller{t: t, base: nodes[2].URL()}
	var rotated api.SigningKeyInfo
	admin.must(200, "POST", "/v1/signing-keys/rotate", "", &rotated)
	eventually(t, 5*time.Second, "the rotated key listed by n1", func() bool {
		var sk struct{ Keys []api.SigningKeyInfo }
		admin.on(nodes[0]).must(200, "GET", "/v1/signing-keys", "", &sk)
		return len(sk.Keys) == 2 && (sk.Keys[0].ID == rotated.ID || sk.Keys[1].ID == rotated.ID)
	})
	admin.on(nodes[1]).must(200, "POST", "/v1/signing-keys/retire", "", nil)

	// Revoked on one node, the key stops working on every node.
	apiCaller{t: t, base: nodes[2].URL()}.must(200, "DELETE", "/v1/keys/"+key.key.ID, "", nil)
	for _, n := range nodes {
		eventually(t, 5*time.Second, "the revoked key refused by "+n.ID(), func() bool {
			st, _, _ := key.on(n).call("GET", "/v1/plugins", "", nil)
			return st == http.StatusUnauthorized
		})
	}
}
