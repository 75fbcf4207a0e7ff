package sfu

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// codecKind identifies the payload formats whose keyframes the forwarder
// recognises.
type codecKind uint8

const (
	codecOther codecKind = iota
	codecVP8
	codecVP9
	codecH264
)

// codecKindOf maps a mime type to its codecKind.
func codecKindOf(mime string) codecKind {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return codecVP8
	case strings.EqualFold(mime, webrtc.MimeTypeVP9):
		return codecVP9
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		return codecH264
	default:
		return codecOther
	}
}

// isKeyframe reports whether payload starts a keyframe. It only looks at a
// few bytes and never allocates.
func isKeyframe(k codecKind, payload []byte) bool {
	switch k {
	case codecVP8:
		return vp8Keyframe(payload)
	case codecVP9:
		return vp9Keyframe(payload)
	case codecH264:
		return h264Keyframe(payload)
	default:
		return false
	}
}

// vp8Keyframe parses the VP8 payload descriptor (RFC 7741 section 4.2) and
// checks the P bit of the first partition of a frame.
func vp8Keyframe(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	b0 := p[0]
	if b0&0x10 == 0 || b0&0x07 != 0 { // not the start of partition 0
		return false
	}
	i := 1
	if b0&0x80 != 0 { // X: extension byte present
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0 // P bit of the VP8 frame header: 0 = keyframe
}

// vp9Keyframe checks the VP9 payload descriptor: not inter-picture
// predicted (P=0) and the beginning of a frame (B=1).
func vp9Keyframe(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	return p[0]&0x40 == 0 && p[0]&0x08 != 0
}

// h264Keyframe reports whether the packet carries an IDR slice or an SPS,
// as a single NAL unit, inside a STAP-A, or as the first FU-A fragment.
func h264Keyframe(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	isKey := func(t byte) bool { return t == 5 || t == 7 }
	switch t := p[0] & 0x1f; t {
	case 24: // STAP-A
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if isKey(p[i] & 0x1f) {
				return true
			}
			i += size
		}
		return false
	case 28: // FU-A
		return len(p) > 1 && p[1]&0x80 != 0 && isKey(p[1]&0x1f)
	default:
		return isKey(t)
	}
}

// matchCodec picks the negotiated codec for a track sent with want: same
// mime type, preferring identical fmtp (H.264 profile, VP9 profile).
func matchCodec(want webrtc.RTPCodecParameters, negotiated []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var found *webrtc.RTPCodecParameters
	for i := range negotiated {
		c := &negotiated[i]
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if fmtpEqual(c.SDPFmtpLine, want.SDPFmtpLine) {
			return *c, true
		}
		if found == nil {
			found = c
		}
	}
	if found == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return *found, true
}

// fmtpEqual compares the parameters that matter for forwarding:
// profile-level-id and packetization-mode (H.264) and profile-id (VP9).
func fmtpEqual(a, b string) bool {
	for _, key := range []string{"profile-level-id", "packetization-mode", "profile-id"} {
		if !strings.EqualFold(fmtpValue(a, key), fmtpValue(b, key)) {
			return false
		}
	}
	return true
}

// fmtpValue returns the value of key in an fmtp line.
func fmtpValue(line, key string) string {
	for _, kv := range strings.Split(line, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}
