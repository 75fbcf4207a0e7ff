package sfu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
)

// OfferedTrack is a media section a client offers to send.
type OfferedTrack struct {
	Mid           string
	Kind          webrtc.RTPCodecType
	StreamID      string // msid stream id
	ClientTrackID string // msid track id
}

// errNoVersion marks an SDP without the mandatory v= line.
var errNoVersion = errors.New("missing v= line")

// parseSDP parses an SDP, mapping every failure (including a panic inside
// the parser) to an error matching core.ErrInvalidSDP.
func parseSDP(s string) (d *sdp.SessionDescription, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, core.Errorf(core.CodeInvalidSDP, "parse sdp: %v", r)
		}
	}()
	if !strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "v=") {
		return nil, core.Errorf(core.CodeInvalidSDP, "parse sdp: %w", errNoVersion)
	}
	d = &sdp.SessionDescription{}
	if err := d.UnmarshalString(s); err != nil {
		return nil, core.Errorf(core.CodeInvalidSDP, "parse sdp: %w", err)
	}
	return d, nil
}

// OfferedTracks lists the media sections an offer sends (sendonly or
// sendrecv), so policy can be checked before answering. Rejected sections
// (port 0) and data channels are skipped. Garbage yields an error matching
// core.ErrInvalidSDP.
func OfferedTracks(sdpText string) ([]OfferedTrack, error) {
	d, err := parseSDP(sdpText)
	if err != nil {
		return nil, err
	}
	sessionDir := direction(d.Attributes, "sendrecv")
	var out []OfferedTrack
	for i, m := range d.MediaDescriptions {
		if m == nil {
			continue
		}
		kind := webrtc.NewRTPCodecType(m.MediaName.Media)
		if kind == 0 || m.MediaName.Port.Value == 0 {
			continue
		}
		if dir := direction(m.Attributes, sessionDir); dir != "sendonly" && dir != "sendrecv" {
			continue
		}
		mid, ok := m.Attribute(sdp.AttrKeyMID)
		if !ok {
			mid = fmt.Sprint(i)
		}
		stream, track := msid(m)
		out = append(out, OfferedTrack{Mid: mid, Kind: kind, StreamID: stream, ClientTrackID: track})
	}
	return out, nil
}

// direction returns the last direction attribute in attrs, or def.
func direction(attrs []sdp.Attribute, def string) string {
	dir := def
	for _, a := range attrs {
		switch a.Key {
		case "sendonly", "sendrecv", "recvonly", "inactive":
			dir = a.Key
		}
	}
	return dir
}

// msid returns the stream and track ids of a media section, from a=msid or
// else from an a=ssrc:N msid: line. A "-" stream (no stream) becomes "".
func msid(m *sdp.MediaDescription) (stream, track string) {
	value, ok := m.Attribute("msid")
	if !ok {
		for _, a := range m.Attributes {
			if a.Key != "ssrc" {
				continue
			}
			if _, rest, found := strings.Cut(a.Value, " msid:"); found {
				value, ok = rest, true
				break
			}
		}
	}
	if !ok {
		return "", ""
	}
	fields := strings.Fields(value)
	if len(fields) > 0 && fields[0] != "-" {
		stream = fields[0]
	}
	if len(fields) > 1 {
		track = fields[1]
	}
	return stream, track
}
