package plugin

import (
	"strconv"
	"unicode/utf8"

	"github.com/parleyhq/parley/abi"
)

// Keys of the abi payloads, in the order the host sends them.
var (
	kCanPublish     = key("can_publish")
	kCanSubscribe   = key("can_subscribe")
	kCanPublishData = key("can_publish_data")

	kIdentity  = key("identity")
	kName      = key("name")
	kRoom      = key("room")
	kGrants    = key("grants")
	kMetadata  = key("metadata")
	kExpiresAt = key("expires_at")
	kRole      = key("role")

	kID            = key("id")
	kClientTrackID = key("client_track_id")
	kParticipantID = key("participant_id")
	kKind          = key("kind")
	kMimeType      = key("mime_type")
	kStreamID      = key("stream_id")

	kToken        = key("token")
	kHost         = key("host")
	kRemoteAddr   = key("remote_addr")
	kClaims       = key("claims")
	kParticipants = key("participants")
	kTrack        = key("track")
	kNode         = key("node")
	kAt           = key("at")
	kReason       = key("reason")
	kSite         = key("site")
	kTrackID      = key("track_id")
	kTrackKind    = key("track_kind")
)

func (r *reader) grants() (g abi.Grants) {
	if !r.open() {
		return g
	}
	for {
		k, ok := r.member()
		switch {
		case !ok:
			return g
		case k == kCanPublish:
			g.CanPublish = r.bool()
		case k == kCanSubscribe:
			g.CanSubscribe = r.bool()
		case k == kCanPublishData:
			g.CanPublishData = r.bool()
		default:
			r.skip()
		}
	}
}

func (r *reader) claims() (c abi.Claims) {
	if !r.open() {
		return c
	}
	for {
		k, ok := r.member()
		switch {
		case !ok:
			return c
		case k == kIdentity:
			c.Identity = r.str()
		case k == kName:
			c.Name = r.str()
		case k == kRoom:
			c.Room = r.str()
		case k == kGrants:
			c.Grants = r.grants()
		case k == kMetadata:
			c.Metadata = r.str()
		case k == kExpiresAt:
			c.ExpiresAt = r.int()
		case k == kRole:
			c.Role = r.str()
		default:
			r.skip()
		}
	}
}

func (r *reader) track() (t abi.Track) {
	if !r.open() {
		return t
	}
	for {
		k, ok := r.member()
		switch {
		case !ok:
			return t
		case k == kID:
			t.ID = r.str()
		case k == kClientTrackID:
			t.ClientTrackID = r.str()
		case k == kParticipantID:
			t.ParticipantID = r.str()
		case k == kIdentity:
			t.Identity = r.str()
		case k == kKind:
			t.Kind = r.str()
		case k == kMimeType:
			t.MimeType = r.str()
		case k == kStreamID:
			t.StreamID = r.str()
		default:
			r.skip()
		}
	}
}

// decodeAuthRequest parses an abi.AuthRequest.
func decodeAuthRequest(b []byte) (req abi.AuthRequest, err error) {
	r := newReader(b)
	for ok := r.open(); ok; {
		var k keyCode
		switch k, ok = r.member(); {
		case !ok:
		case k == kToken:
			req.Token = r.str()
		case k == kHost:
			req.Host = r.str()
		case k == kRemoteAddr:
			req.RemoteAddr = r.str()
		case k == kClaims:
			req.Claims = nil
			if !r.null() {
				c := r.claims()
				req.Claims = &c
			}
		default:
			r.skip()
		}
	}
	return req, r.end()
}

// decodeJoinRequest parses an abi.JoinRequest.
func decodeJoinRequest(b []byte) (req abi.JoinRequest, err error) {
	r := newReader(b)
	for ok := r.open(); ok; {
		var k keyCode
		switch k, ok = r.member(); {
		case !ok:
		case k == kRoom:
			req.Room = r.str()
		case k == kParticipantID:
			req.ParticipantID = r.str()
		case k == kClaims:
			req.Claims = r.claims()
		case k == kParticipants:
			req.Participants = int(r.int())
		case k == kHost:
			req.Host = r.str()
		default:
			r.skip()
		}
	}
	return req, r.end()
}

// decodeTrackRequest parses the shared shape of publish and subscribe
// requests.
func decodeTrackRequest(b []byte) (req abi.PublishRequest, err error) {
	r := newReader(b)
	for ok := r.open(); ok; {
		var k keyCode
		switch k, ok = r.member(); {
		case !ok:
		case k == kRoom:
			req.Room = r.str()
		case k == kParticipantID:
			req.ParticipantID = r.str()
		case k == kClaims:
			req.Claims = r.claims()
		case k == kTrack:
			req.Track = r.track()
		case k == kHost:
			req.Host = r.str()
		default:
			r.skip()
		}
	}
	return req, r.end()
}

// decodePresenceEvent parses an abi.PresenceEvent.
func decodePresenceEvent(b []byte) (ev abi.PresenceEvent, err error) {
	r := newReader(b)
	for ok := r.open(); ok; {
		var k keyCode
		switch k, ok = r.member(); {
		case !ok:
		case k == kID:
			ev.ID = r.str()
		case k == kKind:
			ev.Kind = r.str()
		case k == kRoom:
			ev.Room = r.str()
		case k == kIdentity:
			ev.Identity = r.str()
		case k == kParticipantID:
			ev.ParticipantID = r.str()
		case k == kNode:
			ev.Node = r.str()
		case k == kMetadata:
			ev.Metadata = r.str()
		case k == kAt:
			ev.At = r.int()
		case k == kReason:
			ev.Reason = r.str()
		case k == kSite:
			ev.Site = r.str()
		case k == kTrackID:
			ev.TrackID = r.str()
		case k == kTrackKind:
			ev.TrackKind = r.str()
		default:
			r.skip()
		}
	}
	return ev, r.end()
}

// appendString appends s as a JSON string, replacing invalid UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

func appendGrants(b []byte, g abi.Grants) []byte {
	b = append(b, `{"can_publish":`...)
	b = appendBool(b, g.CanPublish)
	b = append(b, `,"can_subscribe":`...)
	b = appendBool(b, g.CanSubscribe)
	b = append(b, `,"can_publish_data":`...)
	b = appendBool(b, g.CanPublishData)
	return append(b, '}')
}

// appendOptString appends ,"key":"value" when value is not empty.
func appendOptString(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	return appendString(b, value)
}

// appendDecision encodes d as encoding/json would.
func appendDecision(b []byte, d abi.Decision) []byte {
	b = append(b, `{"allow":`...)
	b = appendBool(b, d.Allow)
	b = appendOptString(b, "code", d.Code)
	b = appendOptString(b, "reason", d.Reason)
	if d.Grants != nil {
		b = append(b, `,"grants":`...)
		b = appendGrants(b, *d.Grants)
	}
	if d.MaxBitrate != 0 {
		b = append(b, `,"max_bitrate":`...)
		b = strconv.AppendInt(b, d.MaxBitrate, 10)
	}
	if d.Metadata != nil {
		b = append(b, `,"metadata":`...)
		b = appendString(b, *d.Metadata)
	}
	return append(b, '}')
}

func appendClaims(b []byte, c abi.Claims) []byte {
	b = append(b, `{"identity":`...)
	b = appendString(b, c.Identity)
	b = appendOptString(b, "name", c.Name)
	b = append(b, `,"room":`...)
	b = appendString(b, c.Room)
	b = append(b, `,"grants":`...)
	b = appendGrants(b, c.Grants)
	b = appendOptString(b, "metadata", c.Metadata)
	if c.ExpiresAt != 0 {
		b = append(b, `,"expires_at":`...)
		b = strconv.AppendInt(b, c.ExpiresAt, 10)
	}
	b = appendOptString(b, "role", c.Role)
	return append(b, '}')
}

// appendAuthResult encodes r as encoding/json would.
func appendAuthResult(b []byte, r abi.AuthResult) []byte {
	b = append(b, `{"allow":`...)
	b = appendBool(b, r.Allow)
	if r.Skip {
		b = append(b, `,"skip":true`...)
	}
	b = appendOptString(b, "code", r.Code)
	b = appendOptString(b, "reason", r.Reason)
	if r.Claims != nil {
		b = append(b, `,"claims":`...)
		b = appendClaims(b, *r.Claims)
	}
	return append(b, '}')
}
