package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/core/protocol"
)

// TestBadInputLeavesCallAlone sends each kind of bad input on its own
// connection while a two-party call runs, checks each gets its documented
// error, and that the call's media keeps flowing and nobody was dropped.
func TestBadInputLeavesCallAlone(t *testing.T) {
	const secret = "bad-input-test-secret-0123456789"
	n := newNode(t, func(c *node.Config) { c.TokenSecret = secret })
	call := startCall(t, n, "calm")

	// Expired an hour ago: well past the verifier's clock-skew allowance.
	expired, err := devtoken.Mint([]byte(secret), core.Claims{Identity: "late", Room: "calm", Grants: core.AllGrants},
		time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	valid, _ := n.MintToken("other", "mallory", time.Hour)

	cases := []struct {
		name   string
		send   func(r *rawWS)
		id     string
		code   core.Code
		closes bool
	}{
		{"malformed json", func(r *rawWS) { r.sendRaw([]byte(`{"v":1,"id":"m1","type":`)) }, "", core.CodeMalformed, false},
		{"not an object", func(r *rawWS) { r.sendRaw([]byte(`[1,2,3]`)) }, "", core.CodeMalformed, false},
		{"unknown envelope field", func(r *rawWS) { r.sendRaw([]byte(`{"v":1,"id":"e1","type":"ping","x":1}`)) }, "e1", core.CodeMalformed, false},
		{"wrong version", func(r *rawWS) { r.sendRaw([]byte(`{"v":9,"id":"v1","type":"ping"}`)) }, "v1", core.CodeUnsupportedVersion, false},
		{"unknown type", func(r *rawWS) { r.request("u1", "teleport", nil) }, "u1", core.CodeUnknownType, false},
		{"request before auth", func(r *rawWS) {
			r.request("a1", protocol.TypePublish, protocol.PublishRequest{Offer: protocol.SDP{Type: "offer", SDP: "v=0"}})
		}, "a1", core.CodeUnauthenticated, false},
		{"garbage token", func(r *rawWS) { r.request("t1", protocol.TypeJoin, protocol.JoinRequest{Token: "garbage"}) }, "t1", core.CodeInvalidToken, false},
		{"forged token", func(r *rawWS) {
			r.request("t2", protocol.TypeJoin, protocol.JoinRequest{Token: valid[:len(valid)-3] + "abc"})
		}, "t2", core.CodeInvalidToken, false},
		{"expired token", func(r *rawWS) { r.request("t3", protocol.TypeJoin, protocol.JoinRequest{Token: expired}) }, "t3", core.CodeTokenExpired, false},
		{"bad join data", func(r *rawWS) { r.sendRaw([]byte(`{"v":1,"id":"d1","type":"join","data":{"tokn":"x"}}`)) }, "d1", core.CodeBadRequest, false},
		{"oversized frame", func(r *rawWS) {
			r.sendRaw([]byte(`{"v":1,"id":"big","type":"ping","data":{"pad":"` + strings.Repeat("x", 70<<10) + `"}}`))
		}, "", core.CodeMessageTooLarge, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, n.SignalURL())
			tc.send(r)
			m, ok := r.next()
			if !ok {
				t.Fatal("connection closed without an error message")
			}
			if tc.closes {
				if m.Type != protocol.TypeClosing {
					t.Fatalf("want closing event, got %+v", m)
				}
				var c protocol.Closing
				protocol.DecodeData(&m, &c)
				if c.Code != tc.code {
					t.Fatalf("closing code %q, want %q", c.Code, tc.code)
				}
				if _, ok := r.next(); ok {
					t.Fatal("connection still open after closing event")
				}
				return
			}
			if !m.IsResponse() || m.ID != tc.id || !errors.Is(m.Err(), &core.Error{Code: tc.code}) {
				t.Fatalf("got %+v (err %v), want response %q with code %q", m, m.Err(), tc.id, tc.code)
			}
			// The connection stays usable.
			r.request("after", protocol.TypePing, nil)
			if resp := r.response("after"); resp.Err() != nil {
				t.Fatalf("ping after bad input: %v", resp.Err())
			}
		})
	}

	t.Run("sdp garbage after join", func(t *testing.T) {
		r := dialRaw(t, n.SignalURL())
		r.request("j", protocol.TypeJoin, protocol.JoinRequest{Token: valid})
		if m := r.response("j"); m.Err() != nil {
			t.Fatal(m.Err())
		}
		r.request("p", protocol.TypePublish, protocol.PublishRequest{Offer: protocol.SDP{Type: "offer", SDP: "this is not sdp"}})
		if m := r.response("p"); !errors.Is(m.Err(), core.ErrInvalidSDP) {
			t.Fatalf("publish garbage: %v", m.Err())
		}
		r.request("t", protocol.TypeTrickle, protocol.Trickle{Target: "nowhere"})
		if m := r.response("t"); !errors.Is(m.Err(), &core.Error{Code: core.CodeBadRequest}) {
			t.Fatalf("trickle bad target: %v", m.Err())
		}
		r.request("j2", protocol.TypeJoin, protocol.JoinRequest{Token: valid})
		if m := r.response("j2"); !errors.Is(m.Err(), core.ErrConflict) {
			t.Fatalf("second join: %v", m.Err())
		}
		r.request("d", protocol.TypeData, protocol.DataRequest{Payload: mustJSON(strings.Repeat("x", 17<<10))})
		if m := r.response("d"); !errors.Is(m.Err(), &core.Error{Code: core.CodeBadRequest}) {
			t.Fatalf("oversized data payload: %v", m.Err())
		}
		r.request("d2", protocol.TypeData, protocol.DataRequest{To: "PA_nobody", Payload: mustJSON("hi")})
		if m := r.response("d2"); !errors.Is(m.Err(), core.ErrNotFound) {
			t.Fatalf("data to unknown participant: %v", m.Err())
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		r := dialRaw(t, n.SignalURL())
		limited := false
		for i := 0; i < 300 && !limited; i++ {
			r.request("r", protocol.TypePing, nil)
			m := r.response("r")
			limited = errors.Is(m.Err(), core.ErrRateLimited)
		}
		if !limited {
			t.Fatal("300 back-to-back requests were never rate limited")
		}
	})

	call.checkFlowing(t)
}
