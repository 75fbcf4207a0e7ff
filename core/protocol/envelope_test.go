package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/core"
)

func TestDecodeValid(t *testing.T) {
	m, err := Decode([]byte(`{"v":1,"id":"7","type":"join","data":{"token":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var req JoinRequest
	if err := DecodeData(&m, &req); err != nil {
		t.Fatal(err)
	}
	if m.ID != "7" || m.Type != TypeJoin || req.Token != "x" {
		t.Fatalf("got %+v %+v", m, req)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		in      string
		code    core.Code
		id, typ string
	}{
		{`not json`, core.CodeMalformed, "", ""},
		{`[1,2]`, core.CodeMalformed, "", ""},
		{`{"v":1,"id":"a","type":"join","bogus":1}`, core.CodeMalformed, "a", "join"},
		{`{"v":1,"id":"a","type":"join"} {"v":1}`, core.CodeMalformed, "a", "join"},
		{`{"v":2,"id":"b","type":"join"}`, core.CodeUnsupportedVersion, "b", "join"},
		{`{"v":1,"id":"c"}`, core.CodeMalformed, "c", ""},
		{`{"v":1,"id":"` + strings.Repeat("x", 65) + `","type":"ping"}`, core.CodeBadRequest, "", "ping"},
	}
	for _, tc := range cases {
		m, err := Decode([]byte(tc.in))
		if core.CodeOf(err) != tc.code {
			t.Errorf("%s: code %q, want %q (err %v)", tc.in, core.CodeOf(err), tc.code, err)
		}
		if m.ID != tc.id || m.Type != tc.typ {
			t.Errorf("%s: id/type %q/%q, want %q/%q", tc.in, m.ID, m.Type, tc.id, tc.typ)
		}
	}
}

func TestDecodeDataRejectsUnknownField(t *testing.T) {
	m, err := Decode([]byte(`{"v":1,"id":"1","type":"join","data":{"tokn":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var req JoinRequest
	if err := DecodeData(&m, &req); core.CodeOf(err) != core.CodeBadRequest {
		t.Fatalf("err = %v", err)
	}
}

func TestErrorResponseRoundTrip(t *testing.T) {
	b := ErrorResponse("9", TypePublish, core.Errorf(core.CodeForbidden, "no publishing"))
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !m.IsResponse() || !errors.Is(m.Err(), core.ErrForbidden) || m.Error.Message != "no publishing" {
		t.Fatalf("got %s", b)
	}
	ok, _ := Response("9", TypePing, PingResponse{ServerTimeMS: 5})
	m, _ = Decode(ok)
	if m.Err() != nil || !m.IsResponse() {
		t.Fatalf("got %s", ok)
	}
}

// FuzzDecode checks the decoder never panics, and that whatever it accepts
// re-encodes to an envelope it accepts again with the same id and type.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":"1","type":"join","data":{"token":"t"}}`,
		`{"v":1,"id":"2","type":"trickle","data":{"target":"pub","candidate":{"candidate":"c"}}}`,
		`{"v":1,"type":"x","ok":true,"error":{"code":"internal","message":"m"}}`,
		`{}`, `null`, `[]`, `{"v":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if core.CodeOf(err) == core.CodeInternal {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		var anyData map[string]any
		_ = DecodeData(&m, &anyData)
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := Decode(again)
		if err != nil || m2.ID != m.ID || m2.Type != m.Type {
			t.Fatalf("round trip changed %q -> %q (%v)", b, again, err)
		}
	})
}

func TestLenientIgnoresUnknownFields(t *testing.T) {
	b := []byte(`{"v":1,"type":"participant_left","future":true,"data":{"participant_id":"PA_1","identity":"a","reason":"leave","new_field":1}}`)
	if _, err := Decode(b); err == nil {
		t.Fatal("strict decode accepted an unknown field")
	}
	m, err := DecodeLenient(b)
	if err != nil {
		t.Fatal(err)
	}
	var ev ParticipantLeft
	if err := DecodeDataLenient(&m, &ev); err != nil || ev.Identity != "a" {
		t.Fatalf("lenient data: %+v %v", ev, err)
	}
	if err := DecodeData(&m, &ev); err == nil {
		t.Fatal("strict data decode accepted an unknown field")
	}
}
