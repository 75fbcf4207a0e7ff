package raftstore

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/parleyhq/parley/core"
)

// Commands are what the replicated log holds. Each is encoded as
//
//	byte 0   encoding version (commandVersion)
//	byte 1   CommandKind
//	rest     the command as JSON
//
// Kinds and JSON field names are part of the on-disk format: they never
// change meaning. A node applies only commands of versions and kinds it
// knows; anything else is recorded as a bad command (deterministically, so
// all replicas agree), which is why a new kind must not be proposed before
// every node runs a binary that knows it.
const commandVersion = 1

// Limits on what one command may carry.
const (
	// MaxCommandSize bounds an encoded command.
	MaxCommandSize = 4 << 20
	// ModuleChunkSize is how many module bytes one ModuleChunk carries.
	ModuleChunkSize = 512 << 10
	// MaxModuleSize bounds a plugin module.
	MaxModuleSize = 64 << 20
)

// CommandKind identifies a command type in the log.
type CommandKind uint8

// Command kinds.
const (
	KindRegisterNode CommandKind = 1
	KindSetDrain     CommandKind = 2
	KindNodeDown     CommandKind = 3
	KindClaimRoom    CommandKind = 4
	KindReleaseRoom  CommandKind = 5
	KindPresence     CommandKind = 6
	KindModuleChunk  CommandKind = 7
	KindPutPlugin    CommandKind = 8
	KindDeletePlugin CommandKind = 9

	KindEnqueueWebhooks     CommandKind = 10
	KindSettleWebhooks      CommandKind = 11
	KindClearWebhooks       CommandKind = 12
	KindRetryWebhooks       CommandKind = 13
	KindRotateSigningKey    CommandKind = 14
	KindRetireSigningKeys   CommandKind = 15
	KindPutAPIKey           CommandKind = 16
	KindDeleteAPIKey        CommandKind = 17
	KindReserveIdempotency  CommandKind = 18
	KindCompleteIdempotency CommandKind = 19
	KindForgetIdempotency   CommandKind = 20
)

// Header is carried by every command.
type Header struct {
	// RequestID names the request: the state machine applies a request id
	// at most once within its de-duplication window and answers a repeat
	// with the first result. Store.Apply fills in a fresh one when empty;
	// a caller that retries a write itself keeps the id it used.
	RequestID string `json:"rid"`
	// Node is the node that proposed the command (filled in by Apply).
	Node string `json:"node,omitempty"`
	// At is the proposer's clock in Unix nanoseconds (filled in by Apply
	// when zero). The state machine takes every timestamp from here, never
	// from its own clock, so replicas agree.
	At int64 `json:"at"`
}

// Head returns the header, so that every command type implements Command.
func (h *Header) Head() *Header { return h }

// Time returns At as a time.Time in UTC.
func (h *Header) Time() time.Time { return time.Unix(0, h.At).UTC() }

// Command is one typed, versioned state change.
type Command interface {
	Kind() CommandKind
	Head() *Header
	validate() error
}

// RegisterNode adds a node to the registry or updates its addresses, and
// clears its down mark. Started marks the first registration of a node's
// process: whatever rooms and presence an earlier process of the node left
// behind are released and ended first (reason "node_restarted"), since a
// fresh process hosts no participants.
type RegisterNode struct {
	Header
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	PublicURL string `json:"public_url"`
	Started   bool   `json:"started,omitempty"`
	// MaxKind is the highest command kind the node's binary knows (0 from
	// binaries that predate the field: legacyMaxKind).
	MaxKind CommandKind `json:"max_kind,omitempty"`
}

// SetDrain marks a node as draining or not.
type SetDrain struct {
	Header
	ID       string `json:"id"`
	Draining bool   `json:"draining"`
}

// NodeDown releases a node's rooms and ends its participants' presence,
// then marks it down, or removes it from the registry when Remove is set.
type NodeDown struct {
	Header
	ID     string `json:"id"`
	Reason string `json:"reason"`
	Remove bool   `json:"remove,omitempty"`
}

// ClaimRoom claims a room for Node unless it is owned already.
type ClaimRoom struct {
	Header
	Room     string `json:"room"`
	Node     string `json:"owner"`
	Metadata string `json:"metadata,omitempty"`
}

// ReleaseRoom releases Node's claim on a room (Epoch 0: any claim of Node).
type ReleaseRoom struct {
	Header
	Room  string `json:"room"`
	Node  string `json:"owner"`
	Epoch uint64 `json:"epoch,omitempty"`
}

// Presence records participants joining and leaving and their tracks
// being published and unpublished, in order. Changes of every
// core.PresenceKind are accepted, but room_started and room_finished
// changes are ignored: in a cluster the room claim is the source of truth,
// and the state machine journals those itself when a claim is made
// (ClaimRoom) or released (ReleaseRoom, NodeDown, RegisterNode.Started).
type Presence struct {
	Header
	Changes []PresenceEntry `json:"changes"`
}

// ModuleChunk carries part of a plugin module, in order from offset 0.
// When the last byte arrives the module is checked against SHA256 and
// kept, content-addressed, until no plugin refers to it.
type ModuleChunk struct {
	Header
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}

// PutPlugin adds or replaces a plugin of the cluster's plugin set. Its
// module must have been uploaded (ModuleChunk) before.
type PutPlugin struct {
	Header
	Plugin PluginRecord `json:"plugin"`
}

// DeletePlugin removes a plugin from the plugin set.
type DeletePlugin struct {
	Header
	Name string `json:"name"`
}

// Kind implements Command.
func (*RegisterNode) Kind() CommandKind { return KindRegisterNode }

// Kind implements Command.
func (*SetDrain) Kind() CommandKind { return KindSetDrain }

// Kind implements Command.
func (*NodeDown) Kind() CommandKind { return KindNodeDown }

// Kind implements Command.
func (*ClaimRoom) Kind() CommandKind { return KindClaimRoom }

// Kind implements Command.
func (*ReleaseRoom) Kind() CommandKind { return KindReleaseRoom }

// Kind implements Command.
func (*Presence) Kind() CommandKind { return KindPresence }

// Kind implements Command.
func (*ModuleChunk) Kind() CommandKind { return KindModuleChunk }

// Kind implements Command.
func (*PutPlugin) Kind() CommandKind { return KindPutPlugin }

// Kind implements Command.
func (*DeletePlugin) Kind() CommandKind { return KindDeletePlugin }

// newCommand returns an empty command of kind k, or nil.
func newCommand(k CommandKind) Command {
	switch k {
	case KindRegisterNode:
		return &RegisterNode{}
	case KindSetDrain:
		return &SetDrain{}
	case KindNodeDown:
		return &NodeDown{}
	case KindClaimRoom:
		return &ClaimRoom{}
	case KindReleaseRoom:
		return &ReleaseRoom{}
	case KindPresence:
		return &Presence{}
	case KindModuleChunk:
		return &ModuleChunk{}
	case KindPutPlugin:
		return &PutPlugin{}
	case KindDeletePlugin:
		return &DeletePlugin{}
	}
	return newOpCommand(k)
}

// EncodeCommand returns the log encoding of cmd after checking it.
func EncodeCommand(cmd Command) ([]byte, error) {
	if err := checkCommand(cmd); err != nil {
		return nil, err
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if len(body)+2 > MaxCommandSize {
		return nil, fmt.Errorf("%w: command of %d bytes", ErrTooLarge, len(body)+2)
	}
	return append([]byte{commandVersion, byte(cmd.Kind())}, body...), nil
}

// DecodeCommand parses and checks one encoded command.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(b))
	}
	if len(b) > MaxCommandSize {
		return nil, fmt.Errorf("%w: command of %d bytes", ErrTooLarge, len(b))
	}
	if b[0] != commandVersion {
		return nil, fmt.Errorf("%w: encoding version %d", ErrBadCommand, b[0])
	}
	cmd := newCommand(CommandKind(b[1]))
	if cmd == nil {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrBadCommand, b[1])
	}
	if err := json.Unmarshal(b[2:], cmd); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if err := checkCommand(cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

func checkCommand(cmd Command) error {
	h := cmd.Head()
	if h.RequestID == "" || len(h.RequestID) > 128 {
		return fmt.Errorf("%w: request id must have 1 to 128 bytes", ErrBadCommand)
	}
	if err := cmd.validate(); err != nil {
		return fmt.Errorf("%w: %v %w", ErrBadCommand, cmd.Kind(), err)
	}
	return nil
}

// String names the kind.
func (k CommandKind) String() string {
	names := [...]string{"", "register_node", "set_drain", "node_down", "claim_room", "release_room",
		"presence", "module_chunk", "put_plugin", "delete_plugin", "enqueue_webhooks", "settle_webhooks",
		"clear_webhooks", "retry_webhooks", "rotate_signing_key", "retire_signing_keys", "put_api_key",
		"delete_api_key", "reserve_idempotency", "complete_idempotency", "forget_idempotency"}
	if int(k) < len(names) && names[k] != "" {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

var (
	pluginNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	errField     = func(f string) error { return fmt.Errorf("needs %s", f) }
)

const maxName = 256

func validName(s string) bool { return s != "" && len(s) <= maxName }

func validSHA(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && hex.EncodeToString(b) == s
}

func (c *RegisterNode) validate() error {
	if !nodeIDRE.MatchString(c.ID) {
		return errField("a node id")
	}
	if len(c.RaftAddr) > maxName || len(c.PublicURL) > 2048 {
		return errField("shorter addresses")
	}
	return nil
}

func (c *SetDrain) validate() error {
	if !nodeIDRE.MatchString(c.ID) {
		return errField("a node id")
	}
	return nil
}

func (c *NodeDown) validate() error {
	if !nodeIDRE.MatchString(c.ID) {
		return errField("a node id")
	}
	return nil
}

func (c *ClaimRoom) validate() error {
	if !validName(c.Room) || !nodeIDRE.MatchString(c.Node) {
		return errField("a room and a node id")
	}
	return nil
}

func (c *ReleaseRoom) validate() error {
	if !validName(c.Room) || !nodeIDRE.MatchString(c.Node) {
		return errField("a room and a node id")
	}
	return nil
}

func (c *Presence) validate() error {
	if len(c.Changes) == 0 {
		return errField("changes")
	}
	for _, p := range c.Changes {
		if err := p.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (p *PresenceEntry) validate() error {
	if !p.Kind.Valid() {
		return fmt.Errorf("unknown presence kind %q", p.Kind)
	}
	switch p.Kind {
	case core.PresenceRoomStarted, core.PresenceRoomFinished:
		if !validName(p.Room) {
			return errField("a room")
		}
	case core.PresenceJoined:
		if !validName(p.ParticipantID) || !validName(p.Room) || !validName(p.Node) {
			return errField("participant, room and node")
		}
	case core.PresenceLeft:
		if !validName(p.ParticipantID) {
			return errField("a participant")
		}
	case core.PresenceTrackPublished, core.PresenceTrackUnpublished:
		if !validName(p.ParticipantID) || !validName(p.TrackID) {
			return errField("a participant and a track")
		}
	}
	return nil
}

func (c *ModuleChunk) validate() error {
	switch {
	case !validSHA(c.SHA256):
		return errField("a lower-case hex sha256")
	case c.Size <= 0 || c.Size > MaxModuleSize:
		return fmt.Errorf("size %d out of range", c.Size)
	case c.Offset < 0 || c.Offset+int64(len(c.Data)) > c.Size:
		return fmt.Errorf("chunk at %d+%d beyond size %d", c.Offset, len(c.Data), c.Size)
	case len(c.Data) == 0 || len(c.Data) > ModuleChunkSize:
		return fmt.Errorf("chunk of %d bytes", len(c.Data))
	}
	return nil
}

func (c *PutPlugin) validate() error { return c.Plugin.validate() }

func (c *DeletePlugin) validate() error {
	if !pluginNameRE.MatchString(c.Name) {
		return errField("a plugin name")
	}
	return nil
}

// Result is the state machine's answer to one command.
type Result struct {
	// Index is the log index at which the request id was first applied.
	Index uint64 `json:"index"`
	// Duplicate is set when this answer repeats an earlier one because the
	// request id had been applied already.
	Duplicate bool `json:"dup,omitempty"`
	// Claim is the claim in force after a ClaimRoom.
	Claim *core.RoomClaim `json:"claim,omitempty"`
	// Count is how many webhooks, keys or records the command removed or
	// moved (ClearWebhooks, RetryWebhooks, RetireSigningKeys).
	Count int `json:"count,omitempty"`
	// Created is set when a ReserveIdempotency stored a new record, or a
	// RotateSigningKey added its key.
	Created bool `json:"created,omitempty"`
	// Code is the wire name of the sentinel error the command failed
	// with; Detail says more.
	Code   string `json:"err,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Err returns the error the command failed with, or nil.
func (r Result) Err() error {
	if r.Code == "" {
		return nil
	}
	return fromWire(r.Code, r.Detail)
}

// failed is the Result of a command that failed with sentinel.
func failed(sentinel error, format string, args ...any) Result {
	return Result{Code: wireName(sentinel), Detail: fmt.Sprintf(format, args...)}
}
