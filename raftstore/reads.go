package raftstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/parleyhq/parley/core"
)

// Reads answer from the local replica without waiting; call Sync first
// for a linearizable read.

// Room returns the claim on room in the local replica (core.ClusterState).
func (s *Store) Room(room string) (core.RoomClaim, bool) {
	var c core.RoomClaim
	var ok bool
	s.fsm.read(func(st *state) {
		var r RoomRecord
		if r, ok = st.Rooms[room]; ok {
			c = st.claim(r)
		}
	})
	return c, ok
}

// Rooms returns every claimed room, ordered by name.
func (s *Store) Rooms() []core.RoomClaim {
	var out []core.RoomClaim
	s.fsm.read(func(st *state) {
		for _, name := range sortedKeys(st.Rooms) {
			out = append(out, st.claim(st.Rooms[name]))
		}
	})
	return out
}

// Node returns the registry's record of node id (core.ClusterState).
func (s *Store) Node(id string) (core.ClusterNode, bool) {
	var n NodeRecord
	var ok bool
	s.fsm.read(func(st *state) { n, ok = st.Nodes[id] })
	return nodeOf(n), ok
}

// Nodes returns the registered nodes ordered by id (core.ClusterNodes).
func (s *Store) Nodes() []core.ClusterNode {
	var out []core.ClusterNode
	for _, n := range s.NodeRecords() {
		out = append(out, nodeOf(n))
	}
	return out
}

// NodeRecords returns the full registry records ordered by id.
func (s *Store) NodeRecords() []NodeRecord {
	var out []NodeRecord
	s.fsm.read(func(st *state) {
		for _, id := range sortedKeys(st.Nodes) {
			out = append(out, st.Nodes[id])
		}
	})
	return out
}

// Participants returns the participants present in room ("" for every
// room), ordered by room and participant id.
func (s *Store) Participants(room string) []PresenceRecord {
	var out []PresenceRecord
	s.fsm.read(func(st *state) {
		for _, p := range st.Presence {
			if room == "" || p.Room == room {
				out = append(out, p)
			}
		}
	})
	slices.SortFunc(out, func(a, b PresenceRecord) int {
		return cmp.Or(cmp.Compare(a.Room, b.Room), cmp.Compare(a.ParticipantID, b.ParticipantID))
	})
	return out
}

// AppliedIndex returns the log index of the last command the local replica
// applied.
func (s *Store) AppliedIndex() uint64 { return s.fsm.applied() }

// ClaimRoom claims room for this node unless another node owns it
// (core.ClusterState). The answer is the claim in force.
func (s *Store) ClaimRoom(ctx context.Context, room, metadata string) (core.RoomClaim, error) {
	res, err := s.Apply(ctx, &ClaimRoom{Room: room, Node: s.id, Metadata: metadata})
	if err != nil {
		return core.RoomClaim{}, err
	}
	if res.Claim == nil {
		return core.RoomClaim{}, public(errors.New("raftstore: claim answered without a claim"))
	}
	return *res.Claim, nil
}

// ReleaseRoom releases this node's claim on room (core.ClusterState).
// Presence changes still queued on this node (see Presence) are committed
// first, so that the real leaves of the room's participants precede its
// room_finished in the journal; whatever presence is still recorded for
// the room then ends with reason "room_released".
func (s *Store) ReleaseRoom(ctx context.Context, room string, epoch uint64) error {
	s.pres.flush(ctx)
	_, err := s.Apply(ctx, &ReleaseRoom{Room: room, Node: s.id, Epoch: epoch})
	return err
}

// PutPlugin adds or replaces a plugin of the cluster's plugin set, every
// node of which loads it. The module bytes are replicated through the log
// in chunks (ModuleChunk) unless the cluster holds them already, and kept
// in the replicated state keyed by their sha256 for as long as a plugin
// refers to them: identical modules are stored once, and a node that
// joins later or restores a snapshot gets them with the rest of the
// state. rec.SHA256, when set, must match module.
func (s *Store) PutPlugin(ctx context.Context, rec PluginRecord, module []byte) error {
	sum := sha256.Sum256(module)
	digest := hex.EncodeToString(sum[:])
	if rec.SHA256 != "" && rec.SHA256 != digest {
		return public(fmt.Errorf("%w: plugin %s: module hashes to %s, not %s", ErrChecksum, rec.Name, digest, rec.SHA256))
	}
	if len(module) == 0 || len(module) > MaxModuleSize {
		return public(fmt.Errorf("%w: module of %d bytes", ErrTooLarge, len(module)))
	}
	rec.SHA256 = digest
	var err error
	// A concurrent put may collect an unreferenced module between upload
	// and put; upload again then.
	for range 3 {
		if err = s.uploadModule(ctx, digest, module); err != nil {
			return err
		}
		_, err = s.Apply(ctx, &PutPlugin{Plugin: rec})
		if !errors.Is(err, ErrModuleMissing) {
			return err
		}
	}
	return err
}

func (s *Store) uploadModule(ctx context.Context, digest string, module []byte) error {
	if _, ok := s.Module(digest); ok {
		return nil
	}
	for off := 0; off < len(module); off += ModuleChunkSize {
		end := min(off+ModuleChunkSize, len(module))
		_, err := s.Apply(ctx, &ModuleChunk{SHA256: digest, Size: int64(len(module)), Offset: int64(off), Data: module[off:end]})
		if err != nil {
			return err
		}
	}
	return nil
}

// DeletePlugin removes a plugin from the plugin set; its module is dropped
// when no other plugin uses it.
func (s *Store) DeletePlugin(ctx context.Context, name string) error {
	_, err := s.Apply(ctx, &DeletePlugin{Name: name})
	return err
}

// Plugins returns the plugin set ordered by Order, then Name.
func (s *Store) Plugins() []PluginRecord {
	var out []PluginRecord
	s.fsm.read(func(st *state) {
		for _, p := range st.Plugins {
			out = append(out, p)
		}
	})
	slices.SortFunc(out, func(a, b PluginRecord) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Module returns the module bytes with the given sha256. The slice is
// shared with the replica and must not be modified.
func (s *Store) Module(sha string) ([]byte, bool) {
	var b []byte
	var ok bool
	s.fsm.read(func(st *state) { b, ok = st.Modules[sha] })
	return b, ok
}
