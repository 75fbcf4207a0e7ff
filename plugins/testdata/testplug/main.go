// Command testplug is the Go plugin the host's tests drive. Its join hook
// behaves by room name: ordinary rooms are allowed and tagged with the
// configured version; rooms named after a misbehaviour (loop, bomb, panic,
// exit, garbage, huge ...) make it misbehave that way. Its presence hook
// does the same for the rooms loop, panic and exit.
package main

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/sdk/plugin"
)

type config struct {
	Version    string `json:"version"`
	Mode       string `json:"mode"`        // "init_fail" fails init
	WebhookURL string `json:"webhook_url"` // presence sends a webhook here
	HugeBytes  int    `json:"huge_bytes"`  // size of the "huge" output
	// AuthPrefix: auth allows tokens "<prefix><identity>", denies the
	// token "revoked" as expired and skips every other token.
	AuthPrefix   string `json:"auth_prefix"`
	PresenceFail bool   `json:"presence_fail"` // presence reports failure
}

var (
	cfg   config
	hoard [][]byte // the memory bomb keeps what it allocates
)

func init() {
	plugin.OnInit(func(abi.InitRequest) error {
		if err := plugin.DecodeConfig(&cfg); err != nil {
			return err
		}
		if cfg.Mode == "init_fail" {
			return errors.New("testplug: asked to fail init")
		}
		return nil
	})
	plugin.HandleRaw(abi.HookJoin, join)
	plugin.OnPublish(func(req abi.PublishRequest) abi.Decision {
		if req.Track.Kind == "video" && strings.HasPrefix(req.Room, "novideo") {
			return abi.Deny(abi.CodeForbidden, "testplug: no video here")
		}
		return abi.Decision{Allow: true, MaxBitrate: 500_000}
	})
	plugin.OnSubscribe(func(abi.SubscribeRequest) abi.Decision { return abi.Allow() })
	plugin.OnPresence(presence)
	plugin.OnAuth(auth)
}

func auth(req abi.AuthRequest) abi.AuthResult {
	switch {
	case req.Token == "revoked":
		return abi.AuthResult{Code: abi.CodeTokenExpired, Reason: "testplug: token revoked"}
	case cfg.AuthPrefix == "" || !strings.HasPrefix(req.Token, cfg.AuthPrefix):
		return abi.AuthResult{Skip: true}
	}
	id := strings.TrimPrefix(req.Token, cfg.AuthPrefix)
	return abi.AuthResult{Allow: true, Claims: &abi.Claims{Identity: id, Room: "room-" + id,
		Grants: abi.Grants{CanSubscribe: true}, Metadata: cfg.Version}}
}

func join(input []byte) ([]byte, error) {
	var req abi.JoinRequest
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, err
	}
	switch req.Room {
	case "loop":
		for {
		}
	case "bomb":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "panic":
		panic("testplug: boom")
	case "exit":
		os.Exit(3)
	case "garbage":
		return []byte("\x00\xff not json {"), nil
	case "huge":
		return []byte(`{"allow":true,"reason":"` + strings.Repeat("a", max(cfg.HugeBytes, 1<<20)) + `"}`), nil
	case "counter":
		n, err := plugin.KVAdd("joins", 1)
		if err != nil {
			return nil, err
		}
		return json.Marshal(abi.Decision{Allow: true, Metadata: ptr(strconv.FormatInt(n, 10))})
	case "log":
		plugin.Logf(abi.LevelInfo, "testplug: join of %s", req.Claims.Identity)
	}
	if strings.HasPrefix(req.Room, "deny") {
		return json.Marshal(abi.Deny(abi.CodeForbidden, "testplug denies "+req.Room))
	}
	d := abi.Decision{Allow: true, Reason: cfg.Version, Metadata: ptr(cfg.Version)}
	return json.Marshal(d)
}

func presence(ev abi.PresenceEvent) error {
	switch ev.Room {
	case "panic":
		panic("testplug: presence boom")
	case "loop":
		for {
		}
	case "exit":
		os.Exit(3)
	}
	if cfg.PresenceFail {
		return errors.New("testplug: presence fails as configured")
	}
	if cfg.WebhookURL == "" {
		return nil
	}
	body, err := json.Marshal(map[string]string{"kind": ev.Kind, "room": ev.Room, "identity": ev.Identity})
	if err != nil {
		return err
	}
	return plugin.SendWebhook(abi.WebhookRequest{URL: cfg.WebhookURL, Event: "presence." + ev.Kind, Body: body})
}

func ptr(s string) *string { return &s }

func main() {}
