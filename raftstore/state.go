package raftstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/parleyhq/parley/core"
)

// NodeRecord is a node of the registry.
type NodeRecord struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	PublicURL string `json:"public_url"`
	Draining  bool   `json:"draining,omitempty"`
	// MaxKind is the highest command kind the node's binary knows.
	MaxKind    CommandKind `json:"max_kind,omitempty"`
	Down       bool        `json:"down,omitempty"` // released by the leader after a failure
	Registered time.Time   `json:"registered"`
	Updated    time.Time   `json:"updated"`
}

// RoomRecord is a claimed room.
type RoomRecord struct {
	Name     string    `json:"name"`
	Owner    string    `json:"owner"`
	Epoch    uint64    `json:"epoch"` // log index of the claim
	Created  time.Time `json:"created"`
	Metadata string    `json:"metadata,omitempty"`
}

// PresenceRecord is a participant present in a room.
type PresenceRecord struct {
	ParticipantID string    `json:"participant_id"`
	Identity      string    `json:"identity"`
	Session       string    `json:"session,omitempty"`
	Room          string    `json:"room"`
	Node          string    `json:"node"`
	Metadata      string    `json:"metadata,omitempty"`
	Joined        time.Time `json:"joined"`
	// Tracks are the participant's published tracks, in publication
	// order. The slice is never modified in place.
	Tracks []TrackRecord `json:"tracks,omitempty"`
}

// TrackRecord is a track a present participant publishes.
type TrackRecord struct {
	ID   string         `json:"id"`
	Kind core.TrackKind `json:"kind,omitempty"`
}

// PresenceEntry is one presence change, as a command carries it and as
// the presence journal keeps it for the webhook pipeline.
type PresenceEntry struct {
	Seq           uint64            `json:"seq,omitempty"`   // journal sequence, assigned when applied
	Index         uint64            `json:"index,omitempty"` // log index, assigned when applied
	Kind          core.PresenceKind `json:"kind"`
	Room          string            `json:"room"`
	Identity      string            `json:"identity"`
	ParticipantID string            `json:"participant_id"`
	Session       string            `json:"session,omitempty"`
	Node          string            `json:"node"`
	Metadata      string            `json:"metadata,omitempty"`
	At            int64             `json:"at"` // Unix nanoseconds
	Reason        string            `json:"reason,omitempty"`
	TrackID       string            `json:"track_id,omitempty"`   // track events
	TrackKind     core.TrackKind    `json:"track_kind,omitempty"` // track events
}

// Event returns the entry as a core presence event. A journalled entry
// (Seq set) gets its stable ID (see EntryID).
func (e PresenceEntry) Event() core.PresenceEvent {
	ev := core.PresenceEvent{
		Kind: e.Kind, Room: e.Room, Identity: e.Identity, ParticipantID: e.ParticipantID,
		Node: e.Node, Metadata: e.Metadata, At: time.Unix(0, e.At).UTC(), Reason: e.Reason,
		TrackID: e.TrackID, TrackKind: e.TrackKind,
	}
	if e.Seq != 0 {
		ev.ID = e.EntryID()
	}
	return ev
}

// EntryID is the journalled entry's stable event id: "pe_" and 24 hex
// digits of the SHA-256 of its log index, journal sequence, kind and
// participant. Every replica derives the same id for the same entry, and
// it never changes, so webhook ids built from it survive leader changes.
func (e PresenceEntry) EntryID() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d/%s/%s", e.Index, e.Seq, e.Kind, e.ParticipantID))
	return "pe_" + hex.EncodeToString(sum[:12])
}

// entryOf converts a core presence change.
func entryOf(c core.PresenceChange) PresenceEntry {
	at := int64(0)
	if !c.At.IsZero() {
		at = c.At.UnixNano()
	}
	return PresenceEntry{
		Kind: c.Kind, Room: c.Room, Identity: c.Identity, ParticipantID: c.ParticipantID,
		Session: c.Session, Node: c.Node, Metadata: c.Metadata, At: at, Reason: c.Reason,
		TrackID: c.TrackID, TrackKind: c.TrackKind,
	}
}

// PluginRecord is one plugin of the cluster's plugin set. The fields
// mirror the plugin host's Spec; Limits is kept as the host's JSON.
type PluginRecord struct {
	Name         string          `json:"name"`
	Version      string          `json:"version"`
	SHA256       string          `json:"sha256"` // hex digest of the module, which Store.Module returns
	Config       json.RawMessage `json:"config,omitempty"`
	Capabilities []string        `json:"capabilities,omitempty"`
	Order        int             `json:"order,omitempty"`
	Limits       json.RawMessage `json:"limits,omitempty"`
	WebhookAllow []string        `json:"webhook_allow,omitempty"`
	Updated      time.Time       `json:"updated"`
}

func (p *PluginRecord) validate() error {
	switch {
	case !pluginNameRE.MatchString(p.Name):
		return fmt.Errorf("plugin name %q must match %s", p.Name, pluginNameRE)
	case !validSHA(p.SHA256):
		return fmt.Errorf("plugin %s needs a lower-case hex sha256", p.Name)
	case len(p.Config) > 0 && !json.Valid(p.Config):
		return fmt.Errorf("plugin %s config is not JSON", p.Name)
	case len(p.Limits) > 0 && !json.Valid(p.Limits):
		return fmt.Errorf("plugin %s limits are not JSON", p.Name)
	}
	return nil
}

// Bounds of the replicated state. They are constants, not configuration:
// every replica must evict the same entries at the same log index.
const (
	dedupeWindow = 20000  // request ids remembered
	maxUploads   = 4      // module uploads in progress
	maxJournal   = 100000 // presence entries kept for the webhook pipeline
	maxOutbox    = 100000 // pending webhooks; beyond, new ones dead-letter
	maxDead      = 10000  // dead-lettered webhooks kept

	maxSigningKeys     = 2        // the active key and the previous one
	maxIdempotency     = 10000    // idempotency records kept
	maxIdempotencySize = 32 << 20 // total result bytes of the records kept
)

type upload struct {
	Size    int64  `json:"size"`
	Data    []byte `json:"data"`
	Started uint64 `json:"started"` // log index of the first chunk
}

type journal struct {
	Seq     uint64          `json:"seq"`     // last sequence assigned
	Dropped uint64          `json:"dropped"` // entries evicted before the cursor passed them
	Entries []PresenceEntry `json:"entries"` // ascending Seq
}

// outbox is the webhook pipeline's durable state. Webhooks are values
// whose maps and slices are never modified in place.
type outbox struct {
	Cursor  uint64         `json:"cursor"`  // last journal Seq the pipeline has processed
	Seq     uint64         `json:"seq"`     // last webhook Seq assigned
	Items   []core.Webhook `json:"items"`   // pending, ascending Seq
	Dead    []core.Webhook `json:"dead"`    // dead letters, in the order they died
	Evicted uint64         `json:"evicted"` // dead letters evicted beyond maxDead
}

// idempotency is the table of idempotency records: by key, and the keys
// in reservation order (oldest first) for eviction.
type idempotency struct {
	Records map[string]core.IdempotencyRecord `json:"records"`
	Order   []string                          `json:"order"`
	Bytes   int                               `json:"bytes"` // total len(Result)
}

type dedupe struct {
	Order   []string          `json:"order"` // oldest first
	Results map[string]Result `json:"results"`
}

func (d *dedupe) get(rid string) (Result, bool) {
	r, ok := d.Results[rid]
	return r, ok
}

func (d *dedupe) put(rid string, r Result) {
	d.Results[rid] = r
	d.Order = append(d.Order, rid)
	for len(d.Order) > dedupeWindow {
		delete(d.Results, d.Order[0])
		d.Order = d.Order[1:]
	}
}

// state is the replicated state. The state machine owns it; readers see
// it under the state machine's lock.
type state struct {
	Applied  uint64                    `json:"applied"` // last command index applied
	Nodes    map[string]NodeRecord     `json:"nodes"`
	Rooms    map[string]RoomRecord     `json:"rooms"`
	Presence map[string]PresenceRecord `json:"presence"` // by participant id
	Plugins  map[string]PluginRecord   `json:"plugins"`
	Modules  map[string][]byte         `json:"modules"` // by sha256; never mutated in place
	Uploads  map[string]upload         `json:"uploads"`
	Journal  journal                   `json:"journal"`
	Outbox   outbox                    `json:"outbox"`
	Dedupe   dedupe                    `json:"dedupe"`

	SigningKeys []core.SigningKey      `json:"signing_keys,omitempty"` // active first
	APIKeys     map[string]core.APIKey `json:"api_keys"`
	Idempotency idempotency            `json:"idempotency"`
}

func newState() *state {
	s := &state{}
	s.fill()
	return s
}

// fill makes nil maps empty (after decoding a snapshot).
func (s *state) fill() {
	if s.Nodes == nil {
		s.Nodes = map[string]NodeRecord{}
	}
	if s.Rooms == nil {
		s.Rooms = map[string]RoomRecord{}
	}
	if s.Presence == nil {
		s.Presence = map[string]PresenceRecord{}
	}
	if s.Plugins == nil {
		s.Plugins = map[string]PluginRecord{}
	}
	if s.Modules == nil {
		s.Modules = map[string][]byte{}
	}
	if s.Uploads == nil {
		s.Uploads = map[string]upload{}
	}
	if s.Dedupe.Results == nil {
		s.Dedupe.Results = map[string]Result{}
	}
	if s.APIKeys == nil {
		s.APIKeys = map[string]core.APIKey{}
	}
	if s.Idempotency.Records == nil {
		s.Idempotency.Records = map[string]core.IdempotencyRecord{}
	}
}

// clone copies s deeply enough for a snapshot to read it while Apply goes
// on: records are values whose slices are never mutated in place, module
// bytes are immutable, and upload buffers (which grow) are copied.
func (s *state) clone() *state {
	c := *s
	c.Nodes = maps.Clone(s.Nodes)
	c.Rooms = maps.Clone(s.Rooms)
	c.Presence = maps.Clone(s.Presence)
	c.Plugins = maps.Clone(s.Plugins)
	c.Modules = maps.Clone(s.Modules)
	c.Uploads = make(map[string]upload, len(s.Uploads))
	for k, u := range s.Uploads {
		u.Data = slices.Clone(u.Data)
		c.Uploads[k] = u
	}
	c.Journal.Entries = slices.Clone(s.Journal.Entries)
	c.Outbox.Items = slices.Clone(s.Outbox.Items)
	c.Outbox.Dead = slices.Clone(s.Outbox.Dead)
	c.SigningKeys = slices.Clone(s.SigningKeys)
	c.APIKeys = maps.Clone(s.APIKeys)
	c.Idempotency.Records = maps.Clone(s.Idempotency.Records)
	c.Idempotency.Order = slices.Clone(s.Idempotency.Order)
	c.Dedupe.Order = slices.Clone(s.Dedupe.Order)
	c.Dedupe.Results = maps.Clone(s.Dedupe.Results)
	return &c
}

// claim returns r as a core claim with the owner's URL.
func (s *state) claim(r RoomRecord) core.RoomClaim {
	return core.RoomClaim{
		Room: r.Name, Owner: r.Owner, OwnerURL: s.Nodes[r.Owner].PublicURL,
		Epoch: r.Epoch, Created: r.Created, Metadata: r.Metadata,
	}
}

func nodeOf(n NodeRecord) core.ClusterNode {
	return core.ClusterNode{ID: n.ID, PublicURL: n.PublicURL, Draining: n.Draining, Down: n.Down}
}

// sortedKeys returns m's keys in order, so that Apply walks maps
// deterministically.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
