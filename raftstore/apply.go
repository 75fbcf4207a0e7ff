package raftstore

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/parleyhq/parley/core"
)

// The handlers below are the whole of the state machine's logic. They run
// under the state machine's lock, read nothing but the command and the
// state, take every timestamp from the command's header and walk maps in
// sorted order: the same log yields the same state and the same events on
// every replica. They do no I/O.

// emitter collects the events of one command.
type emitter struct {
	index  uint64
	events []core.ClusterEvent
}

func (e *emitter) emit(ev core.ClusterEvent) {
	ev.Index = e.index
	e.events = append(e.events, ev)
}

// apply dispatches cmd. Results carry no Index; the caller sets it.
func (s *state) apply(idx uint64, cmd Command, em *emitter) Result {
	switch c := cmd.(type) {
	case *RegisterNode:
		return s.registerNode(c, em)
	case *SetDrain:
		return s.setDrain(c, em)
	case *NodeDown:
		return s.nodeDown(c, em)
	case *ClaimRoom:
		return s.claimRoom(idx, c, em)
	case *ReleaseRoom:
		return s.releaseRoom(c, em)
	case *Presence:
		return s.presence(idx, c, em)
	case *ModuleChunk:
		return s.moduleChunk(idx, c)
	case *PutPlugin:
		return s.putPlugin(c, em)
	case *DeletePlugin:
		return s.deletePlugin(c, em)
	}
	if res, ok := s.applyOp(cmd); ok {
		return res
	}
	return failed(ErrBadCommand, "no handler for %v", cmd.Kind())
}

func (s *state) registerNode(c *RegisterNode, em *emitter) Result {
	if c.Started {
		s.releaseNode(c.ID, c.At, "node_restarted", em)
	}
	n, ok := s.Nodes[c.ID]
	if !ok {
		n = NodeRecord{ID: c.ID, Registered: c.Time()}
	}
	if ok && n.RaftAddr == c.RaftAddr && n.PublicURL == c.PublicURL && !n.Down && n.MaxKind == c.MaxKind {
		return Result{}
	}
	n.RaftAddr, n.PublicURL, n.Down, n.MaxKind, n.Updated = c.RaftAddr, c.PublicURL, false, c.MaxKind, c.Time()
	s.Nodes[c.ID] = n
	em.emit(core.ClusterEvent{Kind: core.ClusterNodeChanged, Node: nodeOf(n), Reason: "registered"})
	return Result{}
}

func (s *state) setDrain(c *SetDrain, em *emitter) Result {
	n, ok := s.Nodes[c.ID]
	if !ok {
		return failed(ErrUnknownNode, "node %s", c.ID)
	}
	if n.Draining == c.Draining {
		return Result{}
	}
	n.Draining, n.Updated = c.Draining, c.Time()
	s.Nodes[c.ID] = n
	reason := "undrained"
	if c.Draining {
		reason = "draining"
	}
	em.emit(core.ClusterEvent{Kind: core.ClusterNodeChanged, Node: nodeOf(n), Reason: reason})
	return Result{}
}

// nodeDown releases the node's rooms, ends its participants' presence (the
// ends go to the presence journal like any leave) and marks the node down
// or removes it.
func (s *state) nodeDown(c *NodeDown, em *emitter) Result {
	reason := c.Reason
	if reason == "" {
		reason = "node_failed"
	}
	s.releaseNode(c.ID, c.At, reason, em)
	n, ok := s.Nodes[c.ID]
	switch {
	case ok && c.Remove:
		delete(s.Nodes, c.ID)
		em.emit(core.ClusterEvent{Kind: core.ClusterNodeRemoved, Node: nodeOf(n), Reason: reason})
	case ok && !n.Down:
		n.Down, n.Updated = true, c.Time()
		s.Nodes[c.ID] = n
		em.emit(core.ClusterEvent{Kind: core.ClusterNodeChanged, Node: nodeOf(n), Reason: reason})
	}
	return Result{}
}

// releaseNode releases every room node owns and ends the presence of
// every participant on it, in sorted order: for each room, its
// participants' tracks and presence end (track_unpublished, then left),
// then the room finishes; participants on node in rooms it does not own
// end last.
func (s *state) releaseNode(node string, at int64, reason string, em *emitter) {
	for _, name := range sortedKeys(s.Rooms) {
		if r := s.Rooms[name]; r.Owner == node {
			s.finishRoom(r, at, reason, reason, em)
		}
	}
	for _, pid := range sortedKeys(s.Presence) {
		if p := s.Presence[pid]; p.Node == node {
			s.endPresence(em.index, p, at, reason, em)
		}
	}
}

// finishRoom ends the presence still recorded for room r on its owner
// (reason leave), removes the claim and journals room_finished (reason).
func (s *state) finishRoom(r RoomRecord, at int64, leave, reason string, em *emitter) {
	for _, pid := range sortedKeys(s.Presence) {
		if p := s.Presence[pid]; p.Room == r.Name && p.Node == r.Owner {
			s.endPresence(em.index, p, at, leave, em)
		}
	}
	claim := s.claim(r)
	delete(s.Rooms, r.Name)
	s.journal(em.index, PresenceEntry{Kind: core.PresenceRoomFinished, Room: r.Name, Node: r.Owner,
		Metadata: r.Metadata, At: at, Reason: reason}, em)
	em.emit(core.ClusterEvent{Kind: core.ClusterRoomReleased, Room: claim, Reason: reason})
}

func (s *state) claimRoom(idx uint64, c *ClaimRoom, em *emitter) Result {
	if r, ok := s.Rooms[c.Room]; ok {
		claim := s.claim(r)
		return Result{Claim: &claim}
	}
	if s.Nodes[c.Node].Draining {
		return failed(ErrDraining, "node %s takes no new rooms", c.Node)
	}
	r := RoomRecord{Name: c.Room, Owner: c.Node, Epoch: idx, Created: c.Time(), Metadata: c.Metadata}
	s.Rooms[c.Room] = r
	claim := s.claim(r)
	em.emit(core.ClusterEvent{Kind: core.ClusterRoomClaimed, Room: claim})
	s.journal(idx, PresenceEntry{Kind: core.PresenceRoomStarted, Room: c.Room, Node: c.Node,
		Metadata: c.Metadata, At: c.At}, em)
	return Result{Claim: &claim}
}

// releaseRoom releases a claim. Presence still recorded for the room on
// its owner ends first (reason "room_released"): the owner's own leaves
// normally commit before the release (Store.ReleaseRoom flushes them).
func (s *state) releaseRoom(c *ReleaseRoom, em *emitter) Result {
	r, ok := s.Rooms[c.Room]
	if !ok {
		return Result{}
	}
	if r.Owner != c.Node || (c.Epoch != 0 && c.Epoch != r.Epoch) {
		return failed(ErrNotOwner, "room %s is owned by %s at epoch %d", r.Name, r.Owner, r.Epoch)
	}
	s.finishRoom(r, c.At, "room_released", "released", em)
	return Result{}
}

// presence applies participant and track changes in order. Room changes
// are ignored (see Presence). A change for a participant that is not
// present is ignored, as is a repeated publish or an unpublish of an
// unknown track, so replays are harmless.
func (s *state) presence(idx uint64, c *Presence, em *emitter) Result {
	for _, ch := range c.Changes {
		if ch.At == 0 {
			ch.At = c.At
		}
		p, present := s.Presence[ch.ParticipantID]
		switch ch.Kind {
		case core.PresenceJoined:
			if present && p.Room == ch.Room && p.Node == ch.Node && p.Session == ch.Session {
				continue // a replayed join
			}
			if present {
				s.endPresence(idx, p, ch.At, "rejoined", em)
			}
			s.Presence[ch.ParticipantID] = PresenceRecord{
				ParticipantID: ch.ParticipantID, Identity: ch.Identity, Session: ch.Session,
				Room: ch.Room, Node: ch.Node, Metadata: ch.Metadata, Joined: ch.Event().At,
			}
			ch.TrackID, ch.TrackKind = "", ""
			s.journal(idx, ch, em)
		case core.PresenceLeft:
			if present {
				s.endPresence(idx, p, ch.At, ch.Reason, em)
			}
		case core.PresenceTrackPublished:
			if present && !slices.ContainsFunc(p.Tracks, func(t TrackRecord) bool { return t.ID == ch.TrackID }) {
				p.Tracks = append(slices.Clip(p.Tracks), TrackRecord{ID: ch.TrackID, Kind: ch.TrackKind})
				s.Presence[p.ParticipantID] = p
				s.journal(idx, p.entry(core.PresenceTrackPublished, ch.At, ch.Reason, p.Tracks[len(p.Tracks)-1]), em)
			}
		case core.PresenceTrackUnpublished:
			i := slices.IndexFunc(p.Tracks, func(t TrackRecord) bool { return t.ID == ch.TrackID })
			if present && i >= 0 {
				t := p.Tracks[i]
				p.Tracks = slices.Delete(slices.Clone(p.Tracks), i, i+1)
				s.Presence[p.ParticipantID] = p
				s.journal(idx, p.entry(core.PresenceTrackUnpublished, ch.At, ch.Reason, t), em)
			}
		}
	}
	return Result{}
}

// entry returns a journal entry of kind about p (and track t).
func (p PresenceRecord) entry(kind core.PresenceKind, at int64, reason string, t TrackRecord) PresenceEntry {
	return PresenceEntry{
		Kind: kind, Room: p.Room, Identity: p.Identity, ParticipantID: p.ParticipantID,
		Session: p.Session, Node: p.Node, Metadata: p.Metadata, At: at, Reason: reason,
		TrackID: t.ID, TrackKind: t.Kind,
	}
}

// endPresence removes p and journals the end of its tracks, then its own.
func (s *state) endPresence(idx uint64, p PresenceRecord, at int64, reason string, em *emitter) {
	delete(s.Presence, p.ParticipantID)
	for _, t := range p.Tracks {
		s.journal(idx, p.entry(core.PresenceTrackUnpublished, at, reason, t), em)
	}
	s.journal(idx, p.entry(core.PresenceLeft, at, reason, TrackRecord{}), em)
}

// journal appends a presence entry for the webhook pipeline and emits it.
func (s *state) journal(idx uint64, e PresenceEntry, em *emitter) {
	s.Journal.Seq++
	e.Seq, e.Index = s.Journal.Seq, idx
	s.Journal.Entries = append(s.Journal.Entries, e)
	// Evict in batches so that a full journal is not copied per entry.
	if over := len(s.Journal.Entries) - maxJournal; over > 1024 {
		for _, old := range s.Journal.Entries[:over] {
			if old.Seq > s.Outbox.Cursor {
				s.Journal.Dropped++
			}
		}
		s.Journal.Entries = slices.Clone(s.Journal.Entries[over:])
	}
	em.emit(core.ClusterEvent{Kind: core.ClusterPresence, Presence: e.Event()})
}

func (s *state) moduleChunk(idx uint64, c *ModuleChunk) Result {
	if _, ok := s.Modules[c.SHA256]; ok {
		return Result{}
	}
	u, ok := s.Uploads[c.SHA256]
	switch {
	case c.Offset == 0:
		u = upload{Size: c.Size, Data: make([]byte, 0, c.Size), Started: idx}
	case !ok || c.Offset != int64(len(u.Data)) || c.Size != u.Size:
		return failed(ErrBadCommand, "module %s: chunk at %d does not continue the upload", c.SHA256, c.Offset)
	}
	u.Data = append(u.Data, c.Data...)
	if int64(len(u.Data)) < u.Size {
		s.Uploads[c.SHA256] = u
		s.evictUploads()
		return Result{}
	}
	delete(s.Uploads, c.SHA256)
	sum := sha256.Sum256(u.Data)
	if hex.EncodeToString(sum[:]) != c.SHA256 {
		return failed(ErrChecksum, "module bytes hash to %x, not %s", sum, c.SHA256)
	}
	s.Modules[c.SHA256] = u.Data
	return Result{}
}

// evictUploads drops the oldest unfinished uploads beyond maxUploads.
func (s *state) evictUploads() {
	for len(s.Uploads) > maxUploads {
		oldest := ""
		for _, k := range sortedKeys(s.Uploads) {
			if oldest == "" || s.Uploads[k].Started < s.Uploads[oldest].Started {
				oldest = k
			}
		}
		delete(s.Uploads, oldest)
	}
}

func (s *state) putPlugin(c *PutPlugin, em *emitter) Result {
	p := c.Plugin
	if _, ok := s.Modules[p.SHA256]; !ok {
		return failed(ErrModuleMissing, "plugin %s: module %s", p.Name, p.SHA256)
	}
	p.Updated = c.Time()
	s.Plugins[p.Name] = p
	s.collectModules(p.SHA256)
	em.emit(core.ClusterEvent{Kind: core.ClusterPluginsChanged, Plugin: p.Name, Reason: "put"})
	return Result{}
}

func (s *state) deletePlugin(c *DeletePlugin, em *emitter) Result {
	if _, ok := s.Plugins[c.Name]; !ok {
		return Result{}
	}
	delete(s.Plugins, c.Name)
	s.collectModules("")
	em.emit(core.ClusterEvent{Kind: core.ClusterPluginsChanged, Plugin: c.Name, Reason: "deleted"})
	return Result{}
}

// collectModules drops modules no plugin refers to, except keep.
func (s *state) collectModules(keep string) {
	used := map[string]bool{keep: true}
	for _, p := range s.Plugins {
		used[p.SHA256] = true
	}
	for _, sum := range sortedKeys(s.Modules) {
		if !used[sum] {
			delete(s.Modules, sum)
		}
	}
}
