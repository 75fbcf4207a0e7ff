package raftstore

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

func TestSecretDerivesSameCA(t *testing.T) {
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	ca1, _, err := deriveCA(b)
	if err != nil {
		t.Fatal(err)
	}
	ca2, _, _ := deriveCA(b)
	if string(ca1.Raw) != string(ca2.Raw) {
		t.Fatal("the same secret derived two different CA certificates")
	}
	other, _ := GenerateSecret()
	ob, _ := ParseSecret(other)
	ca3, _, _ := deriveCA(ob)
	if string(ca3.Raw) == string(ca1.Raw) {
		t.Fatal("two secrets derived the same CA")
	}
	f1, _ := SecretFingerprint(secret)
	f2, _ := SecretFingerprint(other)
	if f1 == "" || f1 == f2 {
		t.Fatalf("fingerprints %q %q", f1, f2)
	}
	for _, bad := range []string{"", "secret", secretPrefix + "short", secretPrefix + "!!!!"} {
		if _, err := ParseSecret(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseSecret(%q) = %v", bad, err)
		}
	}
}

func TestStrangerCannotJoinReadOrForward(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.nodes[0].s.ClaimRoom(ctx, "secret-room", ""); err != nil {
		t.Fatal(err)
	}
	before := c.converged(15 * time.Second)

	// A node with another secret asks to join: refused at the handshake.
	stranger := &testCluster{t: t}
	stranger.secret, _ = GenerateSecret()
	ln, addr := listenLoopback(t)
	cfg := stranger.config("intruder", addr, t.TempDir(), nil)
	cfg.Join = []string{c.nodes[0].addr, c.nodes[1].addr}
	cfg.Listener = ln
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Shutdown(ctxT(t, 10*time.Second)); err != nil {
			t.Error(err)
		}
	}()
	// It cannot forward a write to the cluster either.
	cmd := &ClaimRoom{Header: Header{RequestID: "RQ_x", At: 1}, Room: "stolen", Node: "intruder"}
	data, _ := EncodeCommand(cmd)
	for _, nd := range c.nodes {
		if _, err := s.rpc.call(ctx, nd.addr, opApply, 0, data); err == nil {
			t.Fatalf("stranger's forwarded write to %s accepted", nd.id)
		}
	}
	// Nor ask to be added as a voter (its joiner keeps trying meanwhile).
	body, _ := json.Marshal(memberRequest{ID: "intruder", Addr: addr})
	for _, nd := range c.nodes {
		if _, err := s.rpc.call(ctx, nd.addr, opJoin, 0, body); err == nil {
			t.Fatalf("stranger's join through %s accepted", nd.id)
		}
	}
	for _, nd := range c.nodes {
		if n := len(nd.s.Status().Nodes); n != 3 {
			t.Fatalf("%s sees %d nodes after the stranger's join attempts", nd.id, n)
		}
	}
	if s.inConfiguration() {
		t.Fatal("stranger got into the configuration")
	}
	if got := c.converged(15 * time.Second); string(got) != string(before) {
		t.Fatal("the stranger changed the cluster state")
	}

	// An admin without the secret reads nothing; one with it does.
	bad, err := NewAdmin(stranger.secret, nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Status(ctx, c.nodes[0].addr); err == nil {
		t.Fatal("status answered to a stranger")
	}
	good, err := NewAdmin(c.secret, nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	st, err := good.Status(ctx, c.nodes[0].addr)
	if err != nil || len(st.Nodes) != 3 || st.Leader == "" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if err := good.RemoveNode(ctx, c.nodes[0].addr, "nobody"); err != nil {
		t.Fatalf("removing an unknown node: %v", err)
	}
}

func TestTransportRequiresClientCertificate(t *testing.T) {
	c := newCluster(t, 3, nil)
	addr := c.nodes[0].addr
	// TLS without a client certificate: the server ends the handshake, so
	// nothing comes back.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = conn.Write([]byte{streamRPC, 0, 0, 0, 2, opStatus, 0})
		b, rerr := io.ReadAll(conn)
		_ = conn.Close()
		if len(b) > 0 {
			t.Fatalf("server answered %d bytes without a client certificate", len(b))
		}
		if rerr == nil {
			t.Log("connection closed without an answer")
		}
	}
	// Plain TCP speaking raft: closed without an answer.
	raw, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = raw.Write([]byte{streamRaft, 0, 1, 2, 3})
	b, _ := io.ReadAll(raw)
	_ = raw.Close()
	if len(b) > 0 && b[0] != 0x15 { // a TLS alert at most
		t.Fatalf("plain TCP got %q", b)
	}
}

func TestAdminErrorsCarryCodes(t *testing.T) {
	c := newCluster(t, 3, nil)
	_, err := c.nodes[0].s.Apply(ctxT(t, 5*time.Second), &ClaimRoom{Room: "", Node: "n1"})
	if !errors.Is(err, ErrBadCommand) || core.CodeOf(err) != core.CodeBadRequest {
		t.Fatalf("bad command: %v", err)
	}
	var st Status
	b, _ := json.Marshal(c.nodes[0].s.Status())
	if err := json.Unmarshal(b, &st); err != nil || st.Node != "n1" {
		t.Fatalf("status round trip: %+v %v", st, err)
	}
}
