//go:build !wasip1

package main

import (
	"encoding/json"
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
	h := plugin.NewTestHost([]byte(testConfig))
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

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Targets: []Target{{URL: "ftp://x"}}},
		{Targets: []Target{{URL: "https://x", Events: []string{"moved"}}}},
		{Targets: []Target{{Name: "a", URL: "https://x"}, {Name: "a", URL: "https://y"}}},
		{Targets: []Target{{URL: "https://x", Sites: []string{"["}}}},
	} {
		if _, err := NewRouter(c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}
