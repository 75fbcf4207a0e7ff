//go:build !wasip1

package main

import (
	"testing"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/sdk/plugin"
)

const testConfig = `{
  "rooms": ["team-*", "lobby"], "deny_rooms": ["team-secret"],
  "max_participants": 3, "room_limits": [{"pattern": "lobby", "max_participants": 100}],
  "roles": {
    "host": {"publish": ["audio", "video", "data"], "max_bitrate": 2500000},
    "participant": {"publish": ["audio"], "max_bitrate": 64000},
    "viewer": {"publish": [], "subscribe": true},
    "blind": {"publish": ["audio"], "subscribe": false}
  }
}`

var all = abi.Grants{CanPublish: true, CanSubscribe: true, CanPublishData: true}

func setup(t *testing.T, config string) {
	t.Helper()
	t.Cleanup(plugin.SetTestHost(plugin.NewTestHost([]byte(config))))
	if _, err := plugin.Dispatch(abi.HookInit, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
}

func claims(role string) abi.Claims {
	return abi.Claims{Identity: "a", Metadata: `{"role":"` + role + `"}`, Grants: abi.Grants{CanPublish: true, CanSubscribe: true, CanPublishData: true}}
}

func TestJoin(t *testing.T) {
	setup(t, testConfig)
	cases := []struct {
		room  string
		n     int
		role  string
		code  string
		check func(abi.Decision) bool
	}{
		{"team-a", 0, "host", "", func(d abi.Decision) bool { return d.MaxBitrate == 2500000 && *d.Grants == all }},
		{"team-a", 2, "participant", "", func(d abi.Decision) bool { return *d.Grants == abi.Grants{CanPublish: true, CanSubscribe: true} }},
		{"team-a", 3, "host", abi.CodeRoomFull, nil},
		{"lobby", 99, "viewer", "", func(d abi.Decision) bool { return *d.Grants == abi.Grants{CanSubscribe: true} }},
		{"lobby", 100, "viewer", abi.CodeRoomFull, nil},
		{"team-secret", 0, "host", abi.CodeForbidden, nil},
		{"other", 0, "host", abi.CodeForbidden, nil},
		{"team-a", 0, "king", abi.CodeForbidden, nil},
		{"team-a", 0, "", "", func(d abi.Decision) bool { return d.MaxBitrate == 64000 }}, // default role
	}
	for _, tc := range cases {
		c := claims(tc.role)
		if tc.role == "" {
			c.Metadata = "plain text"
		}
		d, err := plugin.Invoke[abi.Decision](abi.HookJoin, abi.JoinRequest{Room: tc.room, Participants: tc.n, Claims: c})
		switch {
		case err != nil:
			t.Fatal(err)
		case tc.code == "" && (!d.Allow || !tc.check(d)):
			t.Errorf("%s/%d/%s: %+v %+v", tc.room, tc.n, tc.role, d, d.Grants)
		case tc.code != "" && (d.Allow || d.Code != tc.code):
			t.Errorf("%s/%d/%s: %+v, want %s", tc.room, tc.n, tc.role, d, tc.code)
		}
	}
}

func TestPublishSubscribe(t *testing.T) {
	setup(t, testConfig)
	pub := func(role, kind string) abi.Decision {
		d, err := plugin.Invoke[abi.Decision](abi.HookPublish, abi.PublishRequest{Claims: claims(role), Track: abi.Track{Kind: kind}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := pub("host", "video"); !d.Allow || d.MaxBitrate != 2500000 {
		t.Errorf("host video %+v", d)
	}
	if d := pub("participant", "video"); d.Allow || d.Reason != `role "participant" may not publish video` {
		t.Errorf("participant video %+v", d)
	}
	if d := pub("participant", "audio"); !d.Allow {
		t.Errorf("participant audio %+v", d)
	}
	if d := pub("viewer", "audio"); d.Allow {
		t.Errorf("viewer audio %+v", d)
	}
	// The claims' role wins over metadata.
	c := claims("viewer")
	c.Role = "host"
	if d, _ := plugin.Invoke[abi.Decision](abi.HookPublish, abi.PublishRequest{Claims: c, Track: abi.Track{Kind: "video"}}); !d.Allow {
		t.Errorf("claims role %+v", d)
	}
	if d, _ := plugin.Invoke[abi.Decision](abi.HookSubscribe, abi.SubscribeRequest{Claims: claims("blind")}); d.Allow {
		t.Errorf("blind subscribe %+v", d)
	}
}

func TestOpenByDefault(t *testing.T) {
	setup(t, `{}`)
	d, err := plugin.Invoke[abi.Decision](abi.HookJoin, abi.JoinRequest{Room: "anything", Participants: 1000, Claims: claims("x")})
	if err != nil || !d.Allow || *d.Grants != all {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Rooms: []string{"["}},
		{Roles: map[string]Role{"x": {Publish: []string{"smell"}}}},
		{Roles: map[string]Role{"host": {}}}, // default role "participant" missing
		{UnknownRole: "maybe"},
	} {
		if _, err := NewPolicy(c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}
