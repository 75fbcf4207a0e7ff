package sfu

import (
	"errors"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
)

// testOffer returns a real pion offer with an audio and a video track to
// send, a receive-only video section and a data channel.
func testOffer(t testing.TB) string {
	t.Helper()
	pc, err := clientAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "desk")
	video, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "desk")
	if _, err := pc.AddTrack(audio); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CreateDataChannel("chat", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

func TestOfferedTracks(t *testing.T) {
	got, err := OfferedTracks(testOffer(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []OfferedTrack{
		{Mid: "0", Kind: webrtc.RTPCodecTypeAudio, StreamID: "desk", ClientTrackID: "mic"},
		{Mid: "1", Kind: webrtc.RTPCodecTypeVideo, StreamID: "desk", ClientTrackID: "cam"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("track %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestOfferedTracksGarbage(t *testing.T) {
	for _, s := range []string{"", "garbage", "v=0\r\no=broken", "\x00\x01", "v=0\r\nm=video\r\n"} {
		if _, err := OfferedTracks(s); !errors.Is(err, core.ErrInvalidSDP) {
			t.Errorf("OfferedTracks(%q) = %v, want ErrInvalidSDP", s, err)
		}
	}
}

func TestOfferedTracksSsrcMsid(t *testing.T) {
	s := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:v\r\na=sendonly\r\n" +
		"a=ssrc:1 msid:st tr\r\n" +
		"m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:a\r\na=sendonly\r\n"
	got, err := OfferedTracks(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (OfferedTrack{Mid: "v", Kind: webrtc.RTPCodecTypeVideo, StreamID: "st", ClientTrackID: "tr"}) {
		t.Errorf("got %+v", got)
	}
}

func FuzzOfferedTracks(f *testing.F) {
	f.Add(testOffer(f))
	f.Add("")
	f.Add("v=0\r\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=msid:- x\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		tracks, err := OfferedTracks(s)
		if err != nil {
			if !errors.Is(err, core.ErrInvalidSDP) {
				t.Fatalf("error %v does not match ErrInvalidSDP", err)
			}
			return
		}
		for _, tr := range tracks {
			if tr.Kind != webrtc.RTPCodecTypeAudio && tr.Kind != webrtc.RTPCodecTypeVideo {
				t.Fatalf("track of kind %v", tr.Kind)
			}
		}
	})
}
