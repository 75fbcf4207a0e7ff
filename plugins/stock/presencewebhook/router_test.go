//go:build !wasip1

package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/sdk/plugin"
)

const testConfig = `{"targets": [
  {"name": "a", "url": "https://a.example/hook", "sites": ["a.example"], "secret": "whsec_c2VjcmV0"},
  {"name": "b-left", "url": "https://b.example/hook", "sites": ["b.example", "*.b.example"], "events": ["left"]},
  {"name": "all-lobby", "url": "http://ops.example/hook", "rooms": ["lobby", "*/lobby"]}
]}`

func send(t *testing.T, ev abi.PresenceEvent) []abi.WebhookRequest {
	t.Helper()
	return sendWith(t, testConfig, ev)
}

func sendWith(t *testing.T, config string, ev abi.PresenceEvent) []abi.WebhookRequest {
	t.Helper()
	h := plugin.NewTestHost([]byte(config))
	defer plugin.SetTestHost(h)()
	if _, err := plugin.Dispatch(abi.HookInit, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := plugin.Invoke[struct{}](abi.HookPresence, ev); err != nil {
		t.Fatal(err)
	}
	return h.Webhooks()
}

func targets(ws []abi.WebhookRequest) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Target)
	}
	return out
}

func TestRouting(t *testing.T) {
	cases := []struct {
		ev   abi.PresenceEvent
		want []string
	}{
		{abi.PresenceEvent{ID: "1", Kind: "joined", Room: "standup", Site: "a.example"}, []string{"a"}},
		{abi.PresenceEvent{ID: "2", Kind: "joined", Room: "b.example/standup"}, nil},
		{abi.PresenceEvent{ID: "3", Kind: "left", Room: "b.example/standup"}, []string{"b-left"}},
		{abi.PresenceEvent{ID: "4", Kind: "left", Room: "x", Site: "eu.b.example"}, []string{"b-left"}},
		{abi.PresenceEvent{ID: "5", Kind: "joined", Room: "a.example/lobby"}, []string{"a", "all-lobby"}},
		{abi.PresenceEvent{ID: "6", Kind: "joined", Room: "c.example/standup"}, nil},
	}
	for _, tc := range cases {
		got := targets(send(t, tc.ev))
		if len(got) != len(tc.want) {
			t.Errorf("%+v: targets %v, want %v", tc.ev, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%+v: targets %v, want %v", tc.ev, got, tc.want)
			}
		}
	}
}

func TestBodyAndID(t *testing.T) {
	ev := abi.PresenceEvent{ID: "pe_1", Kind: "left", Room: "lobby", Identity: "alice", ParticipantID: "PA_1",
		At: 1_700_000_000_123, Reason: "disconnected", Site: "a.example"}
	ws := send(t, ev)
	if len(ws) != 2 || ws[0].Secret != "whsec_c2VjcmV0" || ws[0].Event != "participant.left" {
		t.Fatalf("%+v", ws)
	}
	var b body
	if err := json.Unmarshal(ws[0].Body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "participant.left" || b.Timestamp != "2023-11-14T22:13:20.123Z" || b.Data.Identity != "alice" ||
		b.Data.Reason != "disconnected" || b.Data.Site != "a.example" || b.Data.EventID != "pe_1" {
		t.Fatalf("body %+v", b)
	}
	again := send(t, ev)
	if again[0].ID != ws[0].ID || ws[0].ID == ws[1].ID {
		t.Fatalf("ids %s %s %s", ws[0].ID, again[0].ID, ws[1].ID)
	}
}

func TestEventKinds(t *testing.T) {
	cfg := `{"targets": [
	  {"name": "all", "url": "https://all.example/hook"},
	  {"name": "rooms", "url": "https://rooms.example/hook", "events": ["room_started", "room.finished"]},
	  {"name": "tracks", "url": "https://tracks.example/hook", "events": ["track.published", "track_unpublished"]},
	  {"name": "people", "url": "https://people.example/hook", "events": ["participant.joined", "left"]}
	]}`
	cases := []struct {
		kind, typ string
		want      []string
	}{
		{abi.PresenceJoined, "participant.joined", []string{"all", "people"}},
		{abi.PresenceLeft, "participant.left", []string{"all", "people"}},
		{abi.PresenceRoomStarted, "room.started", []string{"all", "rooms"}},
		{abi.PresenceRoomFinished, "room.finished", []string{"all", "rooms"}},
		{abi.PresenceTrackPublished, "track.published", []string{"all", "tracks"}},
		{abi.PresenceTrackUnpublished, "track.unpublished", []string{"all", "tracks"}},
	}
	if len(cases) != len(abi.PresenceKinds) {
		t.Fatalf("%d cases for %d kinds", len(cases), len(abi.PresenceKinds))
	}
	for _, tc := range cases {
		ev := abi.PresenceEvent{ID: "pe_" + tc.kind, Kind: tc.kind, Room: "r", At: 1_700_000_000_000, Reason: "closed"}
		if strings.HasPrefix(tc.kind, "track") {
			ev.Identity, ev.ParticipantID, ev.TrackID, ev.TrackKind = "alice", "PA_1", "TR_1", "video"
		} else if !strings.HasPrefix(tc.kind, "room") {
			ev.Identity, ev.ParticipantID = "alice", "PA_1"
		}
		ws := sendWith(t, cfg, ev)
		if got := targets(ws); !slices.Equal(got, tc.want) {
			t.Errorf("%s: targets %v, want %v", tc.kind, got, tc.want)
			continue
		}
		var b map[string]any
		if err := json.Unmarshal(ws[0].Body, &b); err != nil {
			t.Fatal(err)
		}
		data := b["data"].(map[string]any)
		if b["type"] != tc.typ || ws[0].Event != tc.typ || data["event_id"] != ev.ID {
			t.Errorf("%s: body %s, event %s", tc.kind, ws[0].Body, ws[0].Event)
		}
		_, hasTrack := data["track_id"]
		_, hasIdentity := data["identity"]
		if hasTrack != (ev.TrackID != "") || hasIdentity != (ev.Identity != "") ||
			hasTrack && (data["track_id"] != "TR_1" || data["track_kind"] != "video") {
			t.Errorf("%s: data %v", tc.kind, data)
		}
	}
	// A kind from a newer host is ignored, not an error.
	if ws := sendWith(t, cfg, abi.PresenceEvent{ID: "x", Kind: "room_renamed", Room: "r"}); len(ws) != 0 {
		t.Errorf("unknown kind gave %v", targets(ws))
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Targets: []Target{{Name: "t", URL: "ftp://x"}}}, `target "t": url "ftp://x": scheme must be http or https`},
		{Config{Targets: []Target{{Name: "t"}}}, `target "t": url is missing`},
		{Config{Targets: []Target{{Name: "t", URL: "https://"}}}, `target "t": url "https://" has no host`},
		{Config{Targets: []Target{{Name: "t", URL: "https://:80/x"}}}, `has no host`},
		{Config{Targets: []Target{{Name: "t", URL: "/relative"}}}, `scheme must be http or https`},
		{Config{Targets: []Target{{Name: "t", URL: "https://x/%zz"}}}, `url "https://x/%zz": parse`},
		{Config{Targets: []Target{{Name: "t", URL: "https://x", Events: []string{"moved"}}}},
			`target "t": unknown event "moved" (known: joined (participant.joined), left (participant.left), room_started (room.started)`},
		{Config{Targets: []Target{{Name: "t", URL: "https://x", Events: []string{"participant.started"}}}}, `unknown event "participant.started"`},
		{Config{Targets: []Target{{Name: "a", URL: "https://x"}, {Name: "a", URL: "https://y"}}}, `target name "a" used twice`},
		{Config{Targets: []Target{{Name: "t", URL: "https://x", Sites: []string{"["}}}}, `target "t": bad pattern "["`},
	}
	for _, tc := range cases {
		_, err := NewRouter(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "presencewebhook: ") {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// Every problem is reported at once.
	_, err := NewRouter(Config{Targets: []Target{{Name: "a", URL: "ftp://x", Events: []string{"moved"}}}})
	if err == nil || !strings.Contains(err.Error(), "scheme") || !strings.Contains(err.Error(), "moved") {
		t.Errorf("combined: %v", err)
	}
	// The plugin refuses to start with a bad configuration.
	h := plugin.NewTestHost([]byte(`{"targets": [{"url": "gopher://x"}]}`))
	defer plugin.SetTestHost(h)()
	if _, err := plugin.Dispatch(abi.HookInit, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "gopher://x") {
		t.Errorf("init with a bad url: %v", err)
	}
}

// FuzzRouter feeds arbitrary configurations and events to the router: a
// configuration is accepted only with valid http(s) targets and known
// events, and every webhook of an accepted one goes to a target's url
// with a JSON body of the event's type.
func FuzzRouter(f *testing.F) {
	f.Add(testConfig, "joined", "a.example/lobby", "")
	f.Add(`{"targets":[{"url":"https://x","events":["track.published"]}]}`, "track_published", "r", "x")
	f.Add(`{"targets":[{"url":"http://[::1]:80/h","events":["room_finished"],"rooms":["*"]}]}`, "room_finished", "r", "")
	f.Add(`{"targets":[{"url":"https://x","events":["moved"]}]}`, "left", "r", "")
	f.Fuzz(func(t *testing.T, config, kind, room, site string) {
		var cfg Config
		if json.Unmarshal([]byte(config), &cfg) != nil {
			return
		}
		r, err := NewRouter(cfg)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "presencewebhook: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		urls := map[string]bool{}
		for _, tg := range cfg.Targets {
			if err := checkURL(tg); err != nil {
				t.Fatalf("accepted a bad url: %v", err)
			}
			for _, e := range tg.Events {
				if _, ok := kindOf(e); !ok {
					t.Fatalf("accepted event %q", e)
				}
			}
			urls[tg.URL] = true
		}
		ws, err := r.Webhooks(abi.PresenceEvent{ID: "pe_1", Kind: kind, Room: room, Site: site})
		if err != nil {
			t.Fatal(err)
		}
		typ, known := eventTypes[kind]
		if !known && len(ws) > 0 {
			t.Fatalf("unknown kind %q gave webhooks", kind)
		}
		for _, w := range ws {
			var b body
			if !urls[w.URL] || json.Unmarshal(w.Body, &b) != nil || b.Type != typ || w.Event != typ || w.ID == "" {
				t.Fatalf("webhook %+v", w)
			}
		}
	})
}
