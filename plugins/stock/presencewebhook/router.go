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

// Router maps events to webhook requests.
type Router struct{ cfg Config }

// NewRouter validates cfg.
func NewRouter(cfg Config) (*Router, error) {
	var errs []error
	names := map[string]bool{}
	for i, t := range cfg.Targets {
		if t.Name == "" {
			t.Name = fmt.Sprintf("target-%d", i)
			cfg.Targets[i].Name = t.Name
		}
		if names[t.Name] {
			errs = append(errs, fmt.Errorf("target name %q used twice", t.Name))
		}
		names[t.Name] = true
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("target %q: url %q is not an http(s) URL", t.Name, t.URL))
		}
		for _, e := range t.Events {
			if e != abi.PresenceJoined && e != abi.PresenceLeft {
				errs = append(errs, fmt.Errorf("target %q: unknown event %q (joined, left)", t.Name, e))
			}
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
	return &Router{cfg: cfg}, nil
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

type data struct {
	EventID       string `json:"event_id"`
	Room          string `json:"room"`
	Identity      string `json:"identity"`
	ParticipantID string `json:"participant_id"`
	Node          string `json:"node,omitempty"`
	Metadata      string `json:"metadata,omitempty"`
	Reason        string `json:"reason,omitempty"`
	Site          string `json:"site,omitempty"`
}

// Webhooks returns the requests the event gives, one per matching target.
func (r *Router) Webhooks(ev abi.PresenceEvent) ([]abi.WebhookRequest, error) {
	site := r.site(ev)
	var out []abi.WebhookRequest
	var payload []byte
	for _, t := range r.cfg.Targets {
		if !slices.Contains(t.Events, ev.Kind) && len(t.Events) > 0 || !matches(t.Sites, site) || !matches(t.Rooms, ev.Room) {
			continue
		}
		if payload == nil {
			var err error
			payload, err = json.Marshal(body{
				Type:      "participant." + ev.Kind,
				Timestamp: time.UnixMilli(ev.At).UTC().Format("2006-01-02T15:04:05.000Z"),
				Data: data{EventID: ev.ID, Room: ev.Room, Identity: ev.Identity, ParticipantID: ev.ParticipantID,
					Node: ev.Node, Metadata: ev.Metadata, Reason: ev.Reason, Site: site},
			})
			if err != nil {
				return nil, fmt.Errorf("presencewebhook: encode body: %w", err)
			}
		}
		id := sha256.Sum256([]byte(ev.ID + "\x00" + t.Name))
		out = append(out, abi.WebhookRequest{ID: "msg_" + hex.EncodeToString(id[:16]), Target: t.Name, URL: t.URL,
			Event: "participant." + ev.Kind, Body: payload, Secret: t.Secret})
	}
	return out, nil
}
