package raftstore

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parleyhq/parley/core"
)

// sampleCommands returns one command of every kind.
func sampleCommands() []Command {
	h := func(n int) Header {
		return Header{RequestID: fmt.Sprintf("RQ_%d", n), Node: "n1", At: int64(1e18) + int64(n)}
	}
	sum := "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" // sha256("hello\n")
	return []Command{
		&RegisterNode{Header: h(1), ID: "n1", RaftAddr: "127.0.0.1:7000", PublicURL: "https://n1.test"},
		&SetDrain{Header: h(2), ID: "n1", Draining: true},
		&SetDrain{Header: h(3), ID: "n1"},
		&ClaimRoom{Header: h(4), Room: "r1", Node: "n1", Metadata: "m"},
		&Presence{Header: h(5), Changes: []PresenceEntry{
			{Kind: core.PresenceJoined, Room: "r1", Identity: "a", ParticipantID: "PA_a", Session: "SE_a", Node: "n1", At: 5},
			{Kind: core.PresenceJoined, Room: "r1", Identity: "b", ParticipantID: "PA_b", Node: "n2"},
		}},
		&Presence{Header: h(20), Changes: []PresenceEntry{
			{Kind: core.PresenceTrackPublished, ParticipantID: "PA_b", TrackID: "TR_1", TrackKind: core.KindVideo},
			{Kind: core.PresenceRoomStarted, Room: "ignored"},
		}},
		&Presence{Header: h(6), Changes: []PresenceEntry{{Kind: core.PresenceLeft, ParticipantID: "PA_a", Reason: "leave"}}},
		&ModuleChunk{Header: h(7), SHA256: sum, Size: 6, Offset: 0, Data: []byte("hel")},
		&ModuleChunk{Header: h(8), SHA256: sum, Size: 6, Offset: 3, Data: []byte("lo\n")},
		&PutPlugin{Header: h(9), Plugin: PluginRecord{Name: "p", Version: "1", SHA256: sum, Config: json.RawMessage(`{"a":1}`), Capabilities: []string{"log"}}},
		&ClaimRoom{Header: h(10), Room: "r2", Node: "n2"},
		&RegisterNode{Header: h(17), ID: "n2", RaftAddr: "127.0.0.1:7001"},
		&NodeDown{Header: h(11), ID: "n2", Reason: "node_failed"},
		&EnqueueWebhooks{Header: h(12), From: 0, To: 2, Items: []core.Webhook{sampleWebhook("W1", "hook.test")}},
		&ReleaseRoom{Header: h(13), Room: "r1", Node: "n1", Epoch: 4},
		&DeletePlugin{Header: h(14), Name: "p"},
		&SettleWebhooks{Header: h(15), Acked: []string{"W1"}},
		&NodeDown{Header: h(16), ID: "n2", Remove: true},
		&EnqueueWebhooks{Header: h(21), From: 2, To: 10, Items: []core.Webhook{sampleWebhook("W2", "hook.test"), sampleWebhook("W3", "other.test")}},
		&SettleWebhooks{Header: h(22), Dead: []core.Webhook{{ID: "W2", Attempts: 3, LastError: "410 Gone"}}},
		&RetryWebhooks{Header: h(23)},
		&ClearWebhooks{Header: h(24), Host: "hook.test"},
		&ClearWebhooks{Header: h(25), Dead: true},
		&RotateSigningKey{Header: h(26), Key: sampleKey(1)},
		&RotateSigningKey{Header: h(27), Key: sampleKey(2), IfNone: true},
		&RotateSigningKey{Header: h(28), Key: sampleKey(3)},
		&RetireSigningKeys{Header: h(29)},
		&PutAPIKey{Header: h(30), Key: core.APIKey{ID: "AK1", Name: "site", Secret: "s1"}},
		&PutAPIKey{Header: h(31), Key: core.APIKey{ID: "AK2", Name: "ops", Secret: "s2"}},
		&DeleteAPIKey{Header: h(32), ID: "AK1"},
		&ReserveIdempotency{Header: h(33), Record: core.IdempotencyRecord{Key: "AK2:k1", Owner: "n1", Hash: "h1"}, TTL: time.Hour},
		&CompleteIdempotency{Header: h(34), Record: core.IdempotencyRecord{Key: "AK2:k1", Status: 200, Result: []byte(`{"ok":true}`)}},
		&ReserveIdempotency{Header: h(35), Record: core.IdempotencyRecord{Key: "AK2:k2"}, TTL: time.Minute},
		&ForgetIdempotency{Header: h(36), Key: "AK2:k2"},
	}
}

func sampleWebhook(id, host string) core.Webhook {
	return core.Webhook{ID: id, Room: "r1", Event: "participant.joined", URL: "https://" + host + "/hook", Host: host,
		Body: json.RawMessage(`{"event":"participant.joined"}`), Headers: map[string]string{"x-site": "a"}}
}

// sampleKey returns a fixed signing key for seed byte b.
func sampleKey(b byte) core.SigningKey {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	return core.SigningKey{ID: signingKeyID(priv.Public().(ed25519.PublicKey)), Private: priv}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		b, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2, 4, '{', '}'})
	f.Add([]byte{1, 99, '{', '}'})
	f.Add([]byte{1, byte(KindPresence), 'n', 'u', 'l', 'l'})
	f.Add(append([]byte{1, byte(KindEnqueueWebhooks)}, `{"rid":"x","from":3,"to":1}`...))
	f.Add(append([]byte{1, byte(KindEnqueueWebhooks)}, `{"rid":"x","from":0,"to":0,"items":[{"id":"W","url":"u","host":"h","body":{"a":[1]}}]}`...))
	f.Add(append([]byte{1, byte(KindRotateSigningKey)}, `{"rid":"x","key":{"id":"00","private":"AAAA"}}`...))
	f.Add(append([]byte{1, byte(KindReserveIdempotency)}, `{"rid":"x","record":{"key":"k"},"ttl":-1}`...))
	f.Add(append([]byte{1, byte(KindSettleWebhooks)}, `{"rid":"x","dead":[{"id":"W","attempts":-1}]}`...))
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		// Whatever decodes re-encodes, and the encoding is a fixed point.
		b1, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatalf("decoded %T does not encode: %v", cmd, err)
		}
		cmd2, err := DecodeCommand(b1)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		b2, _ := EncodeCommand(cmd2)
		if !bytes.Equal(b1, b2) || cmd2.Kind() != cmd.Kind() {
			t.Fatalf("encoding not stable:\n%q\n%q", b1, b2)
		}
		// Applying it never panics and answers deterministically.
		f1, f2 := newFSM(func([]core.ClusterEvent) {}), newFSM(func([]core.ClusterEvent) {})
		r1 := f1.Apply(&raft.Log{Index: 7, Data: b})
		r2 := f2.Apply(&raft.Log{Index: 7, Data: b1})
		if !sameJSON(r1, r2) || !bytes.Equal(fsmDump(f1), fsmDump(f2)) {
			t.Fatalf("same command, different outcome: %v vs %v", r1, r2)
		}
	})
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func fsmDump(f *fsm) []byte {
	var b []byte
	f.read(func(st *state) { b, _ = json.Marshal(st) })
	return b
}

func TestDecodeRejects(t *testing.T) {
	good, _ := EncodeCommand(&ClaimRoom{Header: Header{RequestID: "RQ"}, Room: "r", Node: "n1"})
	cases := map[string][]byte{
		"empty":        nil,
		"version":      append([]byte{9}, good[1:]...),
		"kind":         append([]byte{1, 200}, good[2:]...),
		"json":         []byte{1, byte(KindClaimRoom), '{'},
		"no request":   []byte(string([]byte{1, byte(KindClaimRoom)}) + `{"room":"r","owner":"n1"}`),
		"no room":      []byte(string([]byte{1, byte(KindClaimRoom)}) + `{"rid":"x","owner":"n1"}`),
		"bad node":     []byte(string([]byte{1, byte(KindClaimRoom)}) + `{"rid":"x","room":"r","owner":"bad node"}`),
		"bad presence": []byte(string([]byte{1, byte(KindPresence)}) + `{"rid":"x","changes":[{"kind":"came"}]}`),
		"big chunk":    []byte(string([]byte{1, byte(KindModuleChunk)}) + `{"rid":"x","sha256":"` + strings.Repeat("a", 64) + `","size":2,"offset":1,"data":"AAAA"}`),
	}
	for name, b := range cases {
		if _, err := DecodeCommand(b); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeCommand(make([]byte, MaxCommandSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}

// TestFSMDeterministicAndSnapshot applies the sample log to two state
// machines, compares them, and round-trips a snapshot.
func TestFSMDeterministicAndSnapshot(t *testing.T) {
	var events []core.ClusterEvent
	a := newFSM(func(evs []core.ClusterEvent) { events = append(events, evs...) })
	b := newFSM(func([]core.ClusterEvent) {})
	var results []Result
	for i, c := range sampleCommands() {
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		l := &raft.Log{Index: uint64(i + 1), Data: data}
		ra, rb := a.Apply(l).(Result), b.Apply(l).(Result)
		if !sameJSON(ra, rb) {
			t.Fatalf("command %d: %+v vs %+v", i, ra, rb)
		}
		results = append(results, ra)
	}
	for i, r := range results {
		if r.Code != "" {
			t.Errorf("command %d (%v) failed: %s %s", i, sampleCommands()[i].Kind(), r.Code, r.Detail)
		}
	}
	if !bytes.Equal(fsmDump(a), fsmDump(b)) {
		t.Fatal("replicas diverged")
	}
	var st *state
	a.read(func(s *state) { st = s })
	if len(st.Rooms) != 0 || len(st.Presence) != 0 || len(st.Nodes) != 1 || len(st.Plugins) != 0 || len(st.Modules) != 0 {
		t.Fatalf("final state: %s", fsmDump(a))
	}
	if st.Journal.Seq != 10 || len(st.Journal.Entries) != 0 || st.Outbox.Cursor != 10 || len(st.Outbox.Items) != 1 ||
		st.Outbox.Items[0].ID != "W3" || len(st.Outbox.Dead) != 0 || st.Outbox.Seq != 4 {
		t.Fatalf("journal/outbox: %+v %+v", st.Journal, st.Outbox)
	}
	if len(st.SigningKeys) != 1 || st.SigningKeys[0].ID != sampleKey(3).ID || !st.SigningKeys[0].Active {
		t.Fatalf("signing keys: %+v", st.SigningKeys)
	}
	if len(st.APIKeys) != 1 || st.APIKeys["AK2"].Secret != "s2" {
		t.Fatalf("api keys: %+v", st.APIKeys)
	}
	if r, ok := st.Idempotency.Records["AK2:k1"]; !ok || !r.Done || r.Status != 200 || len(st.Idempotency.Records) != 1 ||
		st.Idempotency.Bytes != len(r.Result) || r.Hash != "h1" {
		t.Fatalf("idempotency: %+v", st.Idempotency)
	}
	kinds := map[core.ClusterEventKind]int{}
	for _, ev := range events {
		kinds[ev.Kind]++
	}
	if kinds[core.ClusterRoomClaimed] != 2 || kinds[core.ClusterRoomReleased] != 2 || kinds[core.ClusterPresence] != 10 || kinds[core.ClusterNodeRemoved] != 1 {
		t.Fatalf("events: %v", kinds)
	}
	// A repeat of an applied request id changes nothing.
	before := fsmDump(a)
	data, _ := EncodeCommand(sampleCommands()[3])
	if r := a.Apply(&raft.Log{Index: 100, Data: data}).(Result); !r.Duplicate || r.Index != 4 {
		t.Fatalf("repeat: %+v", r)
	}
	after := fsmDump(a)
	applied := fmt.Appendf(nil, `"applied":%d`, len(sampleCommands()))
	if !bytes.Equal(bytes.Replace(before, applied, []byte(`"applied":100`), 1), after) {
		t.Fatal("a repeated request changed the state")
	}
	// Snapshot and restore.
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	c := newFSM(func([]core.ClusterEvent) {})
	if err := c.Restore(sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fsmDump(a), fsmDump(c)) {
		t.Fatal("restored state differs")
	}
	if err := c.Restore(&memSink{Buffer: *bytes.NewBufferString("not a snapshot")}); err == nil {
		t.Fatal("garbage restored")
	}
}

func TestFSMRules(t *testing.T) {
	f := newFSM(func([]core.ClusterEvent) {})
	idx := uint64(0)
	apply := func(c Command) Result {
		idx++
		c.Head().RequestID = fmt.Sprintf("RQ_%d", idx)
		c.Head().At = time.Date(2026, 1, 1, 0, 0, 0, int(idx), time.UTC).UnixNano()
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		return f.Apply(&raft.Log{Index: idx, Data: data}).(Result)
	}
	apply(&RegisterNode{ID: "n1"})
	apply(&SetDrain{ID: "n1", Draining: true})
	if r := apply(&ClaimRoom{Room: "r", Node: "n1"}); r.Code != "draining" {
		t.Fatalf("claim while draining: %+v", r)
	}
	if r := apply(&SetDrain{ID: "ghost", Draining: true}); r.Code != "unknown_node" {
		t.Fatalf("drain unknown: %+v", r)
	}
	r := apply(&ClaimRoom{Room: "r", Node: "n2"})
	if r.Claim == nil || r.Claim.Epoch != idx || r.Claim.Owner != "n2" {
		t.Fatalf("claim: %+v", r)
	}
	if r := apply(&ReleaseRoom{Room: "r", Node: "n2", Epoch: 1}); r.Code != "not_owner" {
		t.Fatalf("stale epoch release: %+v", r)
	}
	if r := apply(&ReleaseRoom{Room: "nope", Node: "n2"}); r.Code != "" {
		t.Fatalf("release of unclaimed room: %+v", r)
	}
	sum := "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	if r := apply(&PutPlugin{Plugin: PluginRecord{Name: "p", SHA256: sum}}); r.Code != "module_missing" {
		t.Fatalf("plugin without module: %+v", r)
	}
	if r := apply(&ModuleChunk{SHA256: sum, Size: 6, Offset: 3, Data: []byte("lo\n")}); r.Code != "bad_command" {
		t.Fatalf("chunk out of order: %+v", r)
	}
	if r := apply(&ModuleChunk{SHA256: sum, Size: 3, Data: []byte("bad")}); r.Code != "checksum" {
		t.Fatalf("wrong bytes: %+v", r)
	}
	// Uploads in progress are bounded.
	for i := range maxUploads + 2 {
		s := fmt.Sprintf("%064x", i+1)
		apply(&ModuleChunk{SHA256: s, Size: 10, Data: []byte("x")})
	}
	f.read(func(st *state) {
		if len(st.Uploads) != maxUploads {
			t.Fatalf("%d uploads kept", len(st.Uploads))
		}
		if _, ok := st.Uploads[fmt.Sprintf("%064x", 1)]; ok {
			t.Fatal("oldest upload not evicted")
		}
	})
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

func TestConfigValidate(t *testing.T) {
	secret, _ := GenerateSecret()
	good := DefaultConfig()
	good.NodeID, good.RaftAddr, good.DataDir, good.Secret = "n1", "127.0.0.1:7000", t.TempDir(), secret
	good.Peers = []Peer{{"n1", "127.0.0.1:7000"}, {"n2", "127.0.0.1:7001"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Config){
		"no id":           func(c *Config) { c.NodeID = "" },
		"bad id":          func(c *Config) { c.NodeID = "a b" },
		"no addr":         func(c *Config) { c.RaftAddr = "" },
		"unspecified":     func(c *Config) { c.RaftAddr = "0.0.0.0:7000"; c.Peers = nil },
		"port 0":          func(c *Config) { c.RaftAddr = "127.0.0.1:0"; c.Peers = nil },
		"no data":         func(c *Config) { c.DataDir = "" },
		"no secret":       func(c *Config) { c.Secret = "" },
		"both security":   func(c *Config) { c.TLSFiles = &TLSFiles{"a", "b", "c"} },
		"bad secret":      func(c *Config) { c.Secret = "hunter2" },
		"self missing":    func(c *Config) { c.Peers = c.Peers[1:] },
		"self addr":       func(c *Config) { c.Peers[0].Addr = "127.0.0.1:7009" },
		"duplicate peer":  func(c *Config) { c.Peers = append(c.Peers, c.Peers[1]) },
		"peers and join":  func(c *Config) { c.Join = []string{"127.0.0.1:7001"} },
		"bad url":         func(c *Config) { c.PublicURL = "not a url" },
		"lease > beat":    func(c *Config) { c.LeaderLeaseTimeout = time.Second },
		"zero apply":      func(c *Config) { c.ApplyTimeout = 0 },
		"zero retain":     func(c *Config) { c.SnapshotRetain = 0 },
		"zero grace":      func(c *Config) { c.FailureGrace = 0 },
		"bad join":        func(c *Config) { c.Peers = nil; c.Join = []string{"nohost"} },
		"incomplete tlsf": func(c *Config) { c.Secret = ""; c.TLSFiles = &TLSFiles{CAFile: "x"} },
	}
	for name, mutate := range cases {
		c := good
		c.Peers = append([]Peer(nil), good.Peers...)
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
	peers, err := ParsePeers(" n1=127.0.0.1:7000, n2=h:7001 ,")
	if err != nil || len(peers) != 2 || peers[1] != (Peer{"n2", "h:7001"}) {
		t.Fatalf("ParsePeers = %+v, %v", peers, err)
	}
	if _, err := ParsePeers("n1"); err == nil {
		t.Fatal("ParsePeers accepted a peer without address")
	}
}

func TestDataDirLocked(t *testing.T) {
	c := newCluster(t, 1, nil)
	cfg := c.nodes[0].cfg
	cfg.Listener = nil
	cfg.RaftAddr = "127.0.0.1:1" // never listened on: the lock is taken first
	cfg.Peers = nil
	if _, err := Open(cfg); !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second Open on a data directory: %v", err)
	}
}

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLog(slogText(&buf), "raft")
	l.Info("hello", "k", 1)
	for range 5 {
		l.Error("same failure")
	}
	l.Named("sub").With("a", "b").Warn("named")
	l.Debug("hidden")
	out := buf.String()
	if !strings.Contains(out, "msg=hello") || !strings.Contains(out, "k=1") || !strings.Contains(out, "component=raft") {
		t.Fatalf("info line: %s", out)
	}
	if strings.Count(out, "same failure") != 1 {
		t.Fatalf("repeated errors not limited: %s", out)
	}
	if !strings.Contains(out, "component=raft.sub") || !strings.Contains(out, "a=b") {
		t.Fatalf("named logger: %s", out)
	}
	if strings.Contains(out, "hidden") || l.IsDebug() || !l.IsInfo() {
		t.Fatalf("levels: %s", out)
	}
	l.StandardLogger(nil).Print("std line")
	if !strings.Contains(buf.String(), "std line") {
		t.Fatal("standard logger lost its line")
	}
}
