package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// testBackend is an in-memory node for the API: rooms with participants,
// keys, webhooks and signing keys. A room named "slow-*" blocks room.get
// until release is closed (or the context ends).
type testBackend struct {
	mu      sync.Mutex
	rooms   map[string]*Room
	parts   map[string]map[string]*Participant
	muted   map[string]bool
	data    []string
	keys    map[string]core.APIKey
	hooks   []core.Webhook
	signing []core.SigningKey
	release chan struct{}
	calls   map[string]int
}

func newTestBackend() *testBackend {
	return &testBackend{
		rooms: map[string]*Room{}, parts: map[string]map[string]*Participant{}, muted: map[string]bool{},
		keys: map[string]core.APIKey{}, release: make(chan struct{}), calls: map[string]int{},
		hooks:   []core.Webhook{{ID: "wh1", URL: "https://site.example/hook", Host: "site.example", Secret: "s3cret", Body: json.RawMessage(`{}`)}},
		signing: []core.SigningKey{{ID: "k1", Active: true}},
	}
}

func (b *testBackend) count(what string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[what]
}

func (b *testBackend) ListRooms(context.Context) ([]Room, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []Room{}
	for _, r := range b.rooms {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (b *testBackend) GetRoom(ctx context.Context, name string) (Room, error) {
	if len(name) > 5 && name[:5] == "slow-" {
		select {
		case <-b.release:
		case <-ctx.Done():
			return Room{}, ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rooms[name]
	if !ok {
		return Room{}, core.Errorf(core.CodeNotFound, "no room %q", name)
	}
	return *r, nil
}

func (b *testBackend) CreateRoom(_ context.Context, name string, o RoomOptions) (Room, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls["create"]++
	if _, ok := b.rooms[name]; ok {
		return Room{}, core.Errorf(core.CodeConflict, "room %q exists", name)
	}
	r := &Room{Name: name, MaxParticipants: o.MaxParticipants, Metadata: o.Metadata, EmptyTimeout: int(o.EmptyTimeout / time.Second), Node: "test"}
	b.rooms[name] = r
	b.parts[name] = map[string]*Participant{}
	return *r, nil
}

func (b *testBackend) CloseRoom(_ context.Context, name, _ string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.rooms[name]; !ok {
		return core.Errorf(core.CodeNotFound, "no room %q", name)
	}
	delete(b.rooms, name)
	delete(b.parts, name)
	return nil
}

func (b *testBackend) addParticipant(room, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.parts[room][id] = &Participant{ID: id, Identity: id, Grants: core.AllGrants}
	b.rooms[room].Participants++
}

func (b *testBackend) ListParticipants(_ context.Context, room string) ([]Participant, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ps, ok := b.parts[room]
	if !ok {
		return nil, core.Errorf(core.CodeNotFound, "no room %q", room)
	}
	out := []Participant{}
	for _, p := range ps {
		out = append(out, *p)
	}
	return out, nil
}

func (b *testBackend) participant(room, id string) (*Participant, error) {
	p, ok := b.parts[room][id]
	if !ok {
		return nil, core.Errorf(core.CodeNotFound, "no participant %q in room %q", id, room)
	}
	return p, nil
}

func (b *testBackend) GetParticipant(_ context.Context, room, id string) (Participant, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.participant(room, id)
	if err != nil {
		return Participant{}, err
	}
	return *p, nil
}

func (b *testBackend) RemoveParticipant(_ context.Context, room, id, _ string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.participant(room, id); err != nil {
		return err
	}
	delete(b.parts[room], id)
	return nil
}

func (b *testBackend) UpdateGrants(_ context.Context, room, id string, g core.Grants) (Participant, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.participant(room, id)
	if err != nil {
		return Participant{}, err
	}
	p.Grants = g
	return *p, nil
}

func (b *testBackend) MuteTrack(_ context.Context, room, pid, track string, muted bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.participant(room, pid); err != nil {
		return err
	}
	b.muted[track] = muted
	return nil
}

func (b *testBackend) SendData(_ context.Context, room string, to []string, payload json.RawMessage) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.parts[room]; !ok {
		return 0, core.Errorf(core.CodeNotFound, "no room %q", room)
	}
	b.data = append(b.data, string(payload))
	if len(to) == 0 {
		return len(b.parts[room]), nil
	}
	return len(to), nil
}

func (b *testBackend) PluginList() any { return map[string]any{"plugins": []string{"auth"}} }
func (b *testBackend) PluginLoad(_ context.Context, name string, module, _ []byte) (any, error) {
	return map[string]any{"name": name, "bytes": len(module)}, nil
}
func (b *testBackend) PluginUnload(_ context.Context, name string) error {
	if name != "auth" {
		return core.Errorf(core.CodeNotFound, "no plugin %q", name)
	}
	return nil
}
func (b *testBackend) PluginReload(context.Context) (any, error) {
	return map[string]any{"loaded": 1}, nil
}

func (b *testBackend) List(_ context.Context, dead bool, host string) ([]core.Webhook, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]core.Webhook(nil), b.hooks...), nil
}
func (b *testBackend) Clear(_ context.Context, host string, dead bool) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.hooks)
	b.hooks = nil
	return n, nil
}
func (b *testBackend) Retry(context.Context, string) (int, error) { return 0, nil }

func (b *testBackend) APIKeys() []core.APIKey {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []core.APIKey
	for _, k := range b.keys {
		out = append(out, k)
	}
	return out
}
func (b *testBackend) APIKey(id string) (core.APIKey, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.keys[id]
	return k, ok
}
func (b *testBackend) PutAPIKey(_ context.Context, k core.APIKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keys[k.ID] = k
	return nil
}
func (b *testBackend) DeleteAPIKey(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.keys, id)
	return nil
}

func (b *testBackend) SigningKeys() []core.SigningKey {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]core.SigningKey(nil), b.signing...)
}
func (b *testBackend) RotateSigningKey(context.Context) (core.SigningKey, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.signing {
		b.signing[i].Active = false
	}
	k := core.SigningKey{ID: "k2", Active: true}
	b.signing = append(b.signing, k)
	return k, nil
}
func (b *testBackend) RetireSigningKeys(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.signing) - 1
	b.signing = b.signing[n:]
	return n, nil
}

const testAdminToken = "test-admin-token-0123456789"

// testServer is an API over a testBackend behind a real HTTP listener.
type testServer struct {
	*httptest.Server
	api *Server
	b   *testBackend
	key core.APIKey
}

func newTestServer(t *testing.T, mutate func(*Config, *Deps)) *testServer {
	t.Helper()
	b := newTestBackend()
	cfg := DefaultConfig()
	deps := Deps{Rooms: b, Participants: b, Plugins: b, Webhooks: b, Keys: b, SigningKeys: b, NodeID: "node-a", AdminToken: testAdminToken}
	if mutate != nil {
		mutate(&cfg, &deps)
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	ts := &testServer{Server: httptest.NewServer(mux), api: s, b: b, key: NewKey("test", time.Now())}
	t.Cleanup(ts.Close)
	_ = b.PutAPIKey(context.Background(), ts.key)
	return ts
}
