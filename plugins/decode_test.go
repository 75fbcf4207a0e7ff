package plugins

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/abi"
)

func TestDecodeDecision(t *testing.T) {
	good := map[string]abi.Decision{
		`{"allow":true,"max_bitrate":5,"code":"forbidden"}`:    {Allow: true, MaxBitrate: 5},
		`{"allow":false,"code":"room_full","reason":"full"}`:   {Code: abi.CodeRoomFull, Reason: "full"},
		`{"allow":false,"code":"made_up"}`:                     {Code: abi.CodeForbidden},
		` {"allow":false} `:                                    {Code: abi.CodeForbidden},
		`{"allow":true,"grants":{"can_publish":true},"x":[1]}`: {Allow: true, Grants: &abi.Grants{CanPublish: true}},
	}
	for in, want := range good {
		d, err := decodeDecision([]byte(in))
		if err != nil || d.Allow != want.Allow || d.Code != want.Code || d.Reason != want.Reason || d.MaxBitrate != want.MaxBitrate ||
			(d.Grants == nil) != (want.Grants == nil) {
			t.Errorf("%s: %+v %v", in, d, err)
		}
	}
	for _, in := range []string{``, `null`, `[]`, `{}`, `{"allow":1}`, `{"allow":true}{}`, `{"allow":true,"max_bitrate":-1}`, "\x00\xff"} {
		if _, err := decodeDecision([]byte(in)); err == nil {
			t.Errorf("accepted %q", in)
		}
	}
}

func TestDecodeAuthResult(t *testing.T) {
	for in, ok := range map[string]bool{
		`{"allow":true,"claims":{"identity":"a"}}`: true,
		`{"allow":true}`: false,
		`{"allow":true,"skip":true,"claims":{"identity":"a"}}`: false,
		`{"allow":false,"skip":true}`:                          true,
		`{"allow":false}`:                                      true,
	} {
		if _, err := decodeAuthResult([]byte(in), false); (err == nil) != ok {
			t.Errorf("%s: %v", in, err)
		}
	}
	r, _ := decodeAuthResult([]byte(`{"allow":false,"code":"nope"}`), false)
	if r.Code != abi.CodeInvalidToken {
		t.Errorf("code %q", r.Code)
	}
}

func TestDecodeWebhook(t *testing.T) {
	for in, ok := range map[string]bool{
		`{"url":"https://x.test/h","body":{"a":1}}`:                            true,
		`{"url":"ftp://x.test/h","body":{}}`:                                   false,
		`{"url":"https://x.test/h"}`:                                           false,
		`{"url":"https://x.test/h","body":{},"headers":{"Host":"y"}}`:          false,
		`{"url":"https://x.test/h","body":{},"headers":{"X-A":"b\r\nX-B: c"}}`: false,
		`{"url":"https://x.test/h","body":{},"headers":{"X-A":"b"}}`:           true,
	} {
		if _, err := decodeWebhook([]byte(in)); (err == nil) != ok {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// FuzzDecodeDecision checks the decision decoder never panics and that
// what it accepts is a JSON object whose normalized form survives a round
// trip.
func FuzzDecodeDecision(f *testing.F) {
	f.Add([]byte(`{"allow":true,"max_bitrate":1000,"metadata":"m","grants":{"can_publish":true}}`))
	f.Add([]byte(`{"allow":false,"code":"room_full","reason":"full"}`))
	f.Add([]byte(`{"allow":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := decodeDecision(in)
		if err != nil {
			return
		}
		if !json.Valid(in) || d.MaxBitrate < 0 || len(d.Reason) > abi.MaxReason || (!d.Allow && !abi.ValidDenialCode(d.Code)) {
			t.Fatalf("accepted %q as %+v", in, d)
		}
		b, _ := json.Marshal(d)
		if d2, err := decodeDecision(b); err != nil || d2.Allow != d.Allow || d2.Code != d.Code {
			t.Fatalf("round trip of %+v: %+v %v", d, d2, err)
		}
	})
}

// FuzzDecodeAuthResult checks the auth decoder never panics nor allows
// without an identity.
func FuzzDecodeAuthResult(f *testing.F) {
	f.Add([]byte(`{"allow":true,"claims":{"identity":"a","grants":{"can_publish":true}}}`), false)
	f.Add([]byte(`{"allow":false,"skip":true}`), true)
	f.Fuzz(func(t *testing.T, in []byte, hasClaims bool) {
		r, err := decodeAuthResult(in, hasClaims)
		if err == nil && r.Allow && !hasClaims && (r.Claims == nil || r.Claims.Identity == "") {
			t.Fatalf("allowed without identity: %q", in)
		}
	})
}

// FuzzDecodeWebhook checks the webhook decoder never panics and only
// accepts http(s) URLs and JSON bodies.
func FuzzDecodeWebhook(f *testing.F) {
	f.Add([]byte(`{"url":"https://x.test/h","body":{"a":1},"headers":{"X-A":"b"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := decodeWebhook(in)
		if err == nil && (!json.Valid(r.Body) || len(r.URL) < 8) {
			t.Fatalf("accepted %q", in)
		}
	})
}

// FuzzManifest checks manifest parsing never panics.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"version":"1","capabilities":["log"],"limits":{"call_timeout":"5ms"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := ParseManifest(in); err == nil {
			_, _ = m.Limits.limits()
		}
	})
}
