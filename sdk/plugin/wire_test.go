package plugin

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/parleyhq/parley/abi"
)

var tricky = []string{
	"", "a", "room-1", "exactly8", "sixteen_bytes_ok", "seventeen_bytes_x",
	`quote " and \ backslash`, "tab\tnew\nline\r", "\x00\x01\x1f control",
	"ünïcödé ✓ 🎉", "bad utf8 \xff\xfe here", `{"role":"host"}`, strings.Repeat("x", 300),
	"</script>&amp;", "\u2028\u2029",
}

// viaJSON returns what encoding/json makes of v after a round trip, the
// reference the fast codec must match.
func viaJSON[T any](t testing.TB, v T) (T, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out, b
}

func joinRequest(s string, n int64, flag bool) abi.JoinRequest {
	return abi.JoinRequest{
		Room: s, ParticipantID: "PA_" + s, Participants: int(n), Host: s,
		Claims: abi.Claims{Identity: s, Name: s + s, Room: s, Metadata: s, ExpiresAt: n, Role: s,
			Grants: abi.Grants{CanPublish: flag, CanSubscribe: !flag, CanPublishData: flag}},
	}
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range tricky {
		for _, n := range []int64{0, 1, -1, 1 << 62, -1 << 63, 1<<63 - 1} {
			checkJoin(t, joinRequest(s, n, n%2 == 0))
			tr := abi.PublishRequest{Room: s, Claims: joinRequest(s, n, true).Claims,
				Track: abi.Track{ID: s, ClientTrackID: s, ParticipantID: s, Identity: s, Kind: "video", MimeType: s, StreamID: s}}
			want, b := viaJSON(t, tr)
			got, err := decodeTrackRequest(b)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("track request %s:\n got %+v, %v\nwant %+v", b, got, err, want)
			}
			c := joinRequest(s, n, false).Claims
			ar := abi.AuthRequest{Token: s, Host: s, RemoteAddr: s, Claims: &c}
			wantA, b := viaJSON(t, ar)
			gotA, err := decodeAuthRequest(b)
			if err != nil || !reflect.DeepEqual(gotA, wantA) {
				t.Fatalf("auth request %s:\n got %+v, %v\nwant %+v", b, gotA, err, wantA)
			}
			ev := abi.PresenceEvent{ID: s, Kind: abi.PresenceTrackPublished, Room: s, Identity: s, ParticipantID: s, Node: s,
				Metadata: s, At: n, Reason: s, Site: s, TrackID: s, TrackKind: s}
			wantE, b := viaJSON(t, ev)
			gotE, err := decodePresenceEvent(b)
			if err != nil || gotE != wantE {
				t.Fatalf("presence %s:\n got %+v, %v\nwant %+v", b, gotE, err, wantE)
			}
		}
	}
}

func checkJoin(t testing.TB, req abi.JoinRequest) {
	t.Helper()
	want, b := viaJSON(t, req)
	got, err := decodeJoinRequest(b)
	if err != nil || got != want {
		t.Fatalf("join request %s:\n got %+v, %v\nwant %+v", b, got, err, want)
	}
}

func TestDecodeAcceptsJSONVariants(t *testing.T) {
	in := " {\n \"room\" : \"r\\u00e9\\ud83d\\ude00\" , \"unknown\": [1, {\"a\": [true, null, -1.5e3]}, \"x\"],\n" +
		" \"claims\": {\"identity\": \"id\", \"grants\": null, \"expires_at\": null, \"role\": null}, \"participants\": 7, \"host\": null } "
	got, err := decodeJoinRequest([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var want abi.JoinRequest
	if err := json.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v want %+v", got, want)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	bad := []string{
		``, `{`, `{"room"}`, `{"room":}`, `{"room":"x",}`, `{,"room":"x"}`, `{"room":"x"}}`, `{"room":"x" "host":"y"}`,
		`{"participants":1.5}`, `{"participants":01}`, `{"participants":1e2}`, `{"participants":99999999999999999999}`,
		`{"participants":-}`, `{"room":"unterminated}`, "{\"room\":\"ctl\x01\"}", `{"room":"bad\q"}`, `{"room":"\u12"}`,
		`{"claims":{"grants":{"can_publish":tru}}}`, `{"x":[1,]}`, `{"x":[1 2]}`, `{"x":nul}`, `[]`, `"room"`, `{"room":"x"} trailing`,
	}
	for _, in := range bad {
		if _, err := decodeJoinRequest([]byte(in)); err == nil {
			t.Errorf("accepted %q", in)
		}
	}
}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range tricky {
		md := s
		d := abi.Decision{Allow: len(s)%2 == 0, Code: s, Reason: s, Grants: &abi.Grants{CanPublish: true}, MaxBitrate: int64(len(s)) * 1000, Metadata: &md}
		checkEncoded(t, appendDecision(nil, d), d)
		checkEncoded(t, appendDecision(nil, abi.Decision{}), abi.Decision{})
		c := joinRequest(s, 5, true).Claims
		a := abi.AuthResult{Allow: true, Skip: true, Code: s, Reason: s, Claims: &c}
		checkEncoded(t, appendAuthResult(nil, a), a)
	}
}

func checkEncoded[T any](t *testing.T, b []byte, v T) {
	t.Helper()
	want, _ := viaJSON(t, v)
	var got T
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("encoded %q: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("encoded %s:\n got %+v\nwant %+v", b, got, want)
	}
}

// FuzzDecodeJoinRequest checks that the decoder never panics, never
// accepts what is not JSON, and agrees with encoding/json on what
// encoding/json produces.
func FuzzDecodeJoinRequest(f *testing.F) {
	f.Add([]byte(`{"room":"r","participant_id":"p","claims":{"identity":"i","grants":{"can_publish":true}},"participants":3}`))
	f.Add([]byte(`{"room":"\u00e9\ud800","claims":null,"x":[{"y":-0.5e+3}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := decodeJoinRequest(in)
		if err == nil && !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
	})
}

// FuzzDecodeRoundTrip decodes what encoding/json encodes from arbitrary
// field values.
func FuzzDecodeRoundTrip(f *testing.F) {
	for _, s := range tricky {
		f.Add(s, int64(len(s)), true)
	}
	f.Fuzz(func(t *testing.T, s string, n int64, flag bool) {
		checkJoin(t, joinRequest(s, n, flag))
		ev := abi.PresenceEvent{ID: s, Kind: s, Room: s, Identity: s, At: n, Site: s, TrackID: s, TrackKind: s}
		if flag {
			ev.ParticipantID, ev.Reason = s, s
		}
		want, b := viaJSON(t, ev)
		if got, err := decodePresenceEvent(b); err != nil || got != want {
			t.Fatalf("presence %s:\n got %+v, %v\nwant %+v", b, got, err, want)
		}
	})
}

// FuzzAppendDecision checks that encoded decisions are valid JSON that
// encoding/json reads back as the same decision.
func FuzzAppendDecision(f *testing.F) {
	for _, s := range tricky {
		f.Add(s, s, int64(len(s)), true)
	}
	f.Fuzz(func(t *testing.T, code, reason string, bitrate int64, allow bool) {
		d := abi.Decision{Allow: allow, Code: code, Reason: reason, MaxBitrate: bitrate, Metadata: &reason}
		b := appendDecision(nil, d)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %q", b)
		}
		want, _ := viaJSON(t, d)
		var got abi.Decision
		if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, %v want %+v", got, err, want)
		}
	})
}
