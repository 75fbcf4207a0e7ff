// Command presencewebhook is Parley's stock presence plugin: it turns
// presence events (participant joined/left, room started/finished, track
// published/unpublished) into webhook requests for the configured targets,
// each filtered by event type, by site (the web host the room belongs to;
// several sites may share one Parley) and by room.
//
// The site of an event is the host's (PresenceEvent.Site, from the client's
// HTTP host when known), else the part of the room name before
// site_separator ("example.com/standup" belongs to site "example.com").
//
// Capabilities: config, webhook. Configuration (JSON):
//
//	{
//	  "targets": [
//	    {"name": "site-a", "url": "https://a.example/hooks/parley",
//	     "events": ["joined", "left"],           // empty = all
//	     "sites": ["a.example", "*.a.example"],  // path.Match patterns; empty = all
//	     "rooms": ["*"],                         // path.Match patterns; empty = all
//	     "secret": "whsec_..."}                  // optional per-target HMAC key
//	  ],
//	  "site_separator": "/"
//	}
//
// A target's url must be absolute http or https with a host; the plugin
// refuses to start otherwise. Its events name presence kinds or body
// types, interchangeably:
//
//	joined             participant.joined
//	left               participant.left
//	room_started       room.started
//	room_finished      room.finished
//	track_published    track.published
//	track_unpublished  track.unpublished
//
// Each webhook body follows the Standard Webhooks payload shape:
//
//	{"type": "participant.joined", "timestamp": "2026-01-02T15:04:05.000Z",
//	 "data": {"event_id": ..., "room": ..., "identity": ..., "participant_id": ...,
//	          "node": ..., "metadata": ..., "reason": ..., "site": ...,
//	          "track_id": ..., "track_kind": ...}}
//
// where the participant fields are absent for room events and the track
// fields present only for track events. Its id is derived from the event
// id and the target name, so a redelivered event keeps its webhook-id.
package main

import (
	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/sdk/plugin"
)

var router *Router

func init() {
	plugin.OnInit(func(abi.InitRequest) error {
		var cfg Config
		if err := plugin.DecodeConfig(&cfg); err != nil {
			return err
		}
		r, err := NewRouter(cfg)
		if err != nil {
			return err
		}
		router = r
		return nil
	})
	plugin.OnPresence(func(ev abi.PresenceEvent) error {
		reqs, err := router.Webhooks(ev)
		if err != nil {
			return err
		}
		for _, req := range reqs {
			if err := plugin.SendWebhook(req); err != nil {
				return err
			}
		}
		return nil
	})
}

func main() {}
