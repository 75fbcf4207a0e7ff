// Command roompolicy is Parley's stock room policy plugin: which room
// names are open, how many participants a room takes, and per role what a
// participant may publish (audio, video, data), whether it may subscribe
// and at what bitrate it may publish.
//
// The role is, in order: the claims' role (set by an auth plugin such as
// jwtauth from the token's "role" claim, where the host carries it), else
// the string under role_metadata_key in the participant's metadata when
// that is a JSON object (tokens minted with metadata {"role":"host"}),
// else default_role.
//
// Capabilities: config. Configuration (JSON):
//
//	{
//	  "rooms": ["*"],                        // path.Match patterns of open rooms; empty = all
//	  "deny_rooms": ["admin-*"],             // refused even when matched by rooms
//	  "max_participants": 50,                // 0 = no limit
//	  "room_limits": [{"pattern": "town-hall", "max_participants": 500}],
//	  "role_metadata_key": "role",
//	  "default_role": "participant",
//	  "unknown_role": "deny",                // or "default"
//	  "roles": {
//	    "host":        {"publish": ["audio", "video", "data"], "max_bitrate": 2500000},
//	    "participant": {"publish": ["audio", "video"], "max_bitrate": 1000000},
//	    "viewer":      {"publish": [], "subscribe": true}
//	  }
//	}
//
// With no roles configured every role may publish everything.
package main

import (
	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/sdk/plugin"
)

var policy *Policy

func init() {
	plugin.OnInit(func(abi.InitRequest) error {
		var cfg Config
		if err := plugin.DecodeConfig(&cfg); err != nil {
			return err
		}
		p, err := NewPolicy(cfg)
		if err != nil {
			return err
		}
		policy = p
		return nil
	})
	plugin.OnJoin(func(req abi.JoinRequest) abi.Decision { return policy.Join(req) })
	plugin.OnPublish(func(req abi.PublishRequest) abi.Decision { return policy.Publish(req) })
	plugin.OnSubscribe(func(req abi.SubscribeRequest) abi.Decision { return policy.Subscribe(req) })
}

func main() {}
