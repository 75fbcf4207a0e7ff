package main

import (
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/sdk/plugin"
)

// Config is the plugin's configuration; see the package documentation.
type Config struct {
	Rooms           []string        `json:"rooms"`
	DenyRooms       []string        `json:"deny_rooms"`
	MaxParticipants int             `json:"max_participants"`
	RoomLimits      []RoomLimit     `json:"room_limits"`
	RoleMetadataKey string          `json:"role_metadata_key"`
	DefaultRole     string          `json:"default_role"`
	UnknownRole     string          `json:"unknown_role"`
	Roles           map[string]Role `json:"roles"`
}

// RoomLimit caps the participants of rooms matching Pattern.
type RoomLimit struct {
	Pattern         string `json:"pattern"`
	MaxParticipants int    `json:"max_participants"`
}

// Role is what participants of a role may do.
type Role struct {
	Publish    []string `json:"publish"`   // "audio", "video", "data"
	Subscribe  *bool    `json:"subscribe"` // default true
	MaxBitrate int64    `json:"max_bitrate"`
}

// Policy decides with a validated Config.
type Policy struct{ cfg Config }

// NewPolicy validates cfg and fills in defaults.
func NewPolicy(cfg Config) (*Policy, error) {
	var errs []error
	for _, p := range slices.Concat(cfg.Rooms, cfg.DenyRooms) {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("bad room pattern %q", p))
		}
	}
	for _, l := range cfg.RoomLimits {
		if _, err := path.Match(l.Pattern, ""); err != nil || l.MaxParticipants < 0 {
			errs = append(errs, fmt.Errorf("bad room limit %+v", l))
		}
	}
	for name, r := range cfg.Roles {
		for _, k := range r.Publish {
			if k != "audio" && k != "video" && k != "data" {
				errs = append(errs, fmt.Errorf("role %q: unknown kind %q (audio, video, data)", name, k))
			}
		}
	}
	switch cfg.UnknownRole {
	case "":
		cfg.UnknownRole = "deny"
	case "deny", "default":
	default:
		errs = append(errs, fmt.Errorf("unknown_role %q is neither deny nor default", cfg.UnknownRole))
	}
	if cfg.RoleMetadataKey == "" {
		cfg.RoleMetadataKey = "role"
	}
	if len(cfg.RoleMetadataKey) > 16 {
		errs = append(errs, fmt.Errorf("role_metadata_key %q is longer than 16 bytes", cfg.RoleMetadataKey))
	}
	if cfg.DefaultRole == "" {
		cfg.DefaultRole = "participant"
	}
	if _, ok := cfg.Roles[cfg.DefaultRole]; len(cfg.Roles) > 0 && !ok {
		errs = append(errs, fmt.Errorf("default_role %q is not among the roles", cfg.DefaultRole))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("roompolicy: %w", err)
	}
	return &Policy{cfg: cfg}, nil
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// role resolves a participant's role and its rules; ok is false for an
// unknown role the configuration refuses.
func (p *Policy) role(c abi.Claims) (string, Role, bool) {
	name := c.Role
	if name == "" {
		name, _ = plugin.StringField(c.Metadata, p.cfg.RoleMetadataKey)
	}
	if name == "" {
		name = p.cfg.DefaultRole
	}
	if len(p.cfg.Roles) == 0 {
		return name, Role{Publish: []string{"audio", "video", "data"}}, true
	}
	r, ok := p.cfg.Roles[name]
	if !ok && p.cfg.UnknownRole == "default" {
		name, r, ok = p.cfg.DefaultRole, p.cfg.Roles[p.cfg.DefaultRole], true
	}
	return name, r, ok
}

// limit returns the participant cap of a room; 0 is none.
func (p *Policy) limit(room string) int {
	for _, l := range p.cfg.RoomLimits {
		if ok, _ := path.Match(l.Pattern, room); ok {
			return l.MaxParticipants
		}
	}
	return p.cfg.MaxParticipants
}

// Join decides a join.
func (p *Policy) Join(req abi.JoinRequest) abi.Decision {
	switch limit := p.limit(req.Room); {
	case len(p.cfg.Rooms) > 0 && !matchAny(p.cfg.Rooms, req.Room) || matchAny(p.cfg.DenyRooms, req.Room):
		return abi.Deny(abi.CodeForbidden, fmt.Sprintf("room %q is not open", req.Room))
	case limit > 0 && req.Participants >= limit:
		return abi.Deny(abi.CodeRoomFull, fmt.Sprintf("room %q is full (%d participants)", req.Room, limit))
	}
	name, r, ok := p.role(req.Claims)
	if !ok {
		return abi.Deny(abi.CodeForbidden, fmt.Sprintf("unknown role %q", name))
	}
	g := req.Claims.Grants
	return abi.Decision{Allow: true, MaxBitrate: r.MaxBitrate, Grants: &abi.Grants{
		CanPublish:     g.CanPublish && (slices.Contains(r.Publish, "audio") || slices.Contains(r.Publish, "video")),
		CanSubscribe:   g.CanSubscribe && (r.Subscribe == nil || *r.Subscribe),
		CanPublishData: g.CanPublishData && slices.Contains(r.Publish, "data"),
	}}
}

// Publish decides publishing a track.
func (p *Policy) Publish(req abi.PublishRequest) abi.Decision {
	name, r, ok := p.role(req.Claims)
	switch {
	case !ok:
		return abi.Deny(abi.CodeForbidden, fmt.Sprintf("unknown role %q", name))
	case !slices.Contains(r.Publish, req.Track.Kind):
		return abi.Deny(abi.CodeForbidden, fmt.Sprintf("role %q may not publish %s", name, req.Track.Kind))
	}
	return abi.Decision{Allow: true, MaxBitrate: r.MaxBitrate}
}

// Subscribe decides subscribing to a track.
func (p *Policy) Subscribe(req abi.SubscribeRequest) abi.Decision {
	name, r, ok := p.role(req.Claims)
	switch {
	case !ok:
		return abi.Deny(abi.CodeForbidden, fmt.Sprintf("unknown role %q", name))
	case r.Subscribe != nil && !*r.Subscribe:
		return abi.Deny(abi.CodeForbidden, fmt.Sprintf("role %q may not subscribe", name))
	}
	return abi.Allow()
}
