package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/abi"
)

// Config is the plugin's configuration; see the package documentation.
type Config struct {
	Targets       []Target `json:"targets"`
	SiteSeparator string   `json:"site_separator"`
}

// Target is one receiver and the events it wants.
type Target struct {
	Name   string   `json:"name"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Sites  []string `json:"sites"`
	Rooms  []string `json:"rooms"`
	Secret string   `json:"secret"`
}

// eventTypes maps each presence kind to the type of its webhook body.
var eventTypes = map[string]string{
	abi.PresenceJoined:           "participant.joined",
	abi.PresenceLeft:             "participant.left",
	abi.PresenceRoomStarted:      "room.started",
	abi.PresenceRoomFinished:     "room.finished",
	abi.PresenceTrackPublished:   "track.published",
	abi.PresenceTrackUnpublished: "track.unpublished",
}

// eventNames lists the accepted names of events, for error messages.
func eventNames() string {
	var names []string
	for _, k := range abi.PresenceKinds {
		names = append(names, k+" ("+eventTypes[k]+")")
	}
	return strings.Join(names, ", ")
}

// kindOf returns the presence kind an events entry names: a kind
// ("joined") or a body type ("participant.joined").
func kindOf(name string) (string, bool) {
	for kind, typ := range eventTypes {
		if name == kind || name == typ {
			return kind, true
		}
	}
	return "", false
}

// Router maps events to webhook requests.
type Router struct {
	cfg   Config
	kinds []map[string]bool // per target, the kinds it wants; nil = all
}

// NewRouter validates cfg.
func NewRouter(cfg Config) (*Router, error) {
	var errs []error
	names := map[string]bool{}
	r := &Router{cfg: cfg, kinds: make([]map[string]bool, len(cfg.Targets))}
	for i, t := range cfg.Targets {
		if t.Name == "" {
			t.Name = fmt.Sprintf("target-%d", i)
			cfg.Targets[i].Name = t.Name
		}
		if names[t.Name] {
			errs = append(errs, fmt.Errorf("target name %q used twice", t.Name))
		}
		names[t.Name] = true
		errs = append(errs, checkURL(t))
		for _, e := range t.Events {
			kind, ok := kindOf(e)
			if !ok {
				errs = append(errs, fmt.Errorf("target %q: unknown event %q (known: %s)", t.Name, e, eventNames()))
				continue
			}
			if r.kinds[i] == nil {
				r.kinds[i] = map[string]bool{}
			}
			r.kinds[i][kind] = true
		}
		for _, p := range slices.Concat(t.Sites, t.Rooms) {
			if _, err := path.Match(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("target %q: bad pattern %q", t.Name, p))
			}
		}
	}
	if cfg.SiteSeparator == "" {
		cfg.SiteSeparator = "/"
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("presencewebhook: %w", err)
	}
	r.cfg = cfg
	return r, nil
}

// checkURL validates a target's url: absolute http or https with a host.
func checkURL(t Target) error {
	u, err := url.Parse(t.URL)
	switch {
	case t.URL == "":
		return fmt.Errorf("target %q: url is missing", t.Name)
	case err != nil:
		return fmt.Errorf("target %q: url %q: %w", t.Name, t.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("target %q: url %q: scheme must be http or https", t.Name, t.URL)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("target %q: url %q has no host", t.Name, t.URL)
	}
	return nil
}

// matches reports whether name matches a pattern; no patterns match all.
func matches(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// site returns the site an event belongs to.
func (r *Router) site(ev abi.PresenceEvent) string {
	if ev.Site != "" {
		return ev.Site
	}
	if s, _, ok := strings.Cut(ev.Room, r.cfg.SiteSeparator); ok {
		return s
	}
	return ""
}

// body is the Standard Webhooks payload.
type body struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      data   `json:"data"`
}

// data is the event in a body; participant fields are absent for room
// events, track fields set only for track events.
type data struct {
	EventID       string `json:"event_id"`
	Room          string `json:"room"`
	Identity      string `json:"identity,omitempty"`
	ParticipantID string `json:"participant_id,omitempty"`
	Node          string `json:"node,omitempty"`
	Metadata      string `json:"metadata,omitempty"`
	Reason        string `json:"reason,omitempty"`
	Site          string `json:"site,omitempty"`
	TrackID       string `json:"track_id,omitempty"`
	TrackKind     string `json:"track_kind,omitempty"`
}

// Webhooks returns the requests the event gives, one per matching target.
// An event of a kind this plugin does not know (from a newer host) gives
// none.
func (r *Router) Webhooks(ev abi.PresenceEvent) ([]abi.WebhookRequest, error) {
	typ, ok := eventTypes[ev.Kind]
	if !ok {
		return nil, nil
	}
	site := r.site(ev)
	var out []abi.WebhookRequest
	var payload []byte
	for i, t := range r.cfg.Targets {
		if r.kinds[i] != nil && !r.kinds[i][ev.Kind] || !matches(t.Sites, site) || !matches(t.Rooms, ev.Room) {
			continue
		}
		if payload == nil {
			var err error
			payload, err = json.Marshal(body{
				Type:      typ,
				Timestamp: time.UnixMilli(ev.At).UTC().Format("2006-01-02T15:04:05.000Z"),
				Data: data{EventID: ev.ID, Room: ev.Room, Identity: ev.Identity, ParticipantID: ev.ParticipantID,
					Node: ev.Node, Metadata: ev.Metadata, Reason: ev.Reason, Site: site,
					TrackID: ev.TrackID, TrackKind: ev.TrackKind},
			})
			if err != nil {
				return nil, fmt.Errorf("presencewebhook: encode body: %w", err)
			}
		}
		id := sha256.Sum256([]byte(ev.ID + "\x00" + t.Name))
		out = append(out, abi.WebhookRequest{ID: "msg_" + hex.EncodeToString(id[:16]), Target: t.Name, URL: t.URL,
			Event: typ, Body: payload, Secret: t.Secret})
	}
	return out, nil
}
