package client

import (
	"maps"
	"sort"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// roomState is the client's view of the room, built from the join or resume
// snapshot and kept current by participant and track events.
type roomState struct {
	self protocol.ParticipantInfo // Tracks unused: own tracks live in tracks
	// others holds the other participants by id, Tracks unused.
	others map[string]protocol.ParticipantInfo
	// tracks holds every known track by Parley id, own tracks included.
	tracks map[string]core.TrackInfo
	// muted holds the ids of known tracks the server muted.
	muted map[string]bool
}

func newRoomState() roomState {
	return roomState{
		others: make(map[string]protocol.ParticipantInfo),
		tracks: make(map[string]core.TrackInfo),
		muted:  make(map[string]bool),
	}
}

// setMuted records a track's server-side mute state.
// clone returns a copy of r that shares no map with it, for reading
// outside c.mu while the connection's read loop goes on changing r.
func (r *roomState) clone() roomState {
	return roomState{self: r.self, others: maps.Clone(r.others), tracks: maps.Clone(r.tracks), muted: maps.Clone(r.muted)}
}

func (r *roomState) setMuted(id string, muted bool) {
	if muted {
		r.muted[id] = true
	} else {
		delete(r.muted, id)
	}
}

// roomFromSnapshot builds the state a join or resume response describes.
func roomFromSnapshot(resp *protocol.JoinResponse) roomState {
	r := newRoomState()
	r.self = resp.Participant
	r.self.Tracks, r.self.MutedTracks = nil, nil
	for _, t := range resp.Participant.Tracks {
		r.tracks[t.ID] = t
	}
	for _, id := range resp.Participant.MutedTracks {
		r.muted[id] = true
	}
	for _, p := range resp.Room.Participants {
		if p.ID == r.self.ID {
			continue
		}
		r.addParticipant(p)
		for _, t := range p.Tracks {
			r.tracks[t.ID] = t
		}
		for _, id := range p.MutedTracks {
			r.muted[id] = true
		}
	}
	return r
}

// addParticipant records p (without its tracks). It reports whether p is new.
func (r *roomState) addParticipant(p protocol.ParticipantInfo) bool {
	_, known := r.others[p.ID]
	p.Tracks, p.MutedTracks = nil, nil
	r.others[p.ID] = p
	return !known
}

// removeParticipant forgets a participant and its tracks, returning the
// participant and the tracks that were still known.
func (r *roomState) removeParticipant(id string) (protocol.ParticipantInfo, []core.TrackInfo, bool) {
	p, ok := r.others[id]
	if !ok {
		return p, nil, false
	}
	delete(r.others, id)
	gone := r.tracksOf(id)
	for _, t := range gone {
		delete(r.tracks, t.ID)
		delete(r.muted, t.ID)
	}
	p.Tracks = gone
	return p, gone, true
}

// addTrack records t. It reports whether t was not known before.
func (r *roomState) addTrack(t core.TrackInfo) bool {
	_, known := r.tracks[t.ID]
	r.tracks[t.ID] = t
	return !known
}

// removeTrack forgets a track, returning it if it was known.
func (r *roomState) removeTrack(id string) (core.TrackInfo, bool) {
	t, ok := r.tracks[id]
	delete(r.tracks, id)
	delete(r.muted, id)
	return t, ok
}

// tracksOf lists a participant's tracks sorted by id.
func (r *roomState) tracksOf(participantID string) []core.TrackInfo {
	ts := []core.TrackInfo{}
	for _, t := range r.tracks {
		if t.ParticipantID == participantID {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	return ts
}

// participant returns the participant with id, with its tracks.
func (r *roomState) participant(id string) (protocol.ParticipantInfo, bool) {
	p, ok := r.others[id]
	if id == r.self.ID && id != "" {
		p, ok = r.self, true
	}
	if ok {
		p.Tracks = r.tracksOf(id)
		for _, t := range p.Tracks {
			if r.muted[t.ID] {
				p.MutedTracks = append(p.MutedTracks, t.ID)
			}
		}
	}
	return p, ok
}

// participants lists the other participants, with tracks, by identity.
func (r *roomState) participants() []protocol.ParticipantInfo {
	ps := make([]protocol.ParticipantInfo, 0, len(r.others))
	for id := range r.others {
		p, _ := r.participant(id)
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Identity != ps[j].Identity {
			return ps[i].Identity < ps[j].Identity
		}
		return ps[i].ID < ps[j].ID
	})
	return ps
}

// roomDiff is what changed between two views of the room.
type roomDiff struct {
	joined      []protocol.ParticipantInfo
	left        []protocol.ParticipantInfo
	published   []core.TrackInfo
	unpublished []core.TrackInfo
}

// diffRooms lists what changed from old to cur, as the events that would
// have reported it, in a stable order.
func diffRooms(old, cur *roomState) roomDiff {
	var d roomDiff
	for _, p := range cur.participants() {
		if _, ok := old.others[p.ID]; !ok {
			d.joined = append(d.joined, p)
		}
	}
	for _, p := range old.participants() {
		if _, ok := cur.others[p.ID]; !ok {
			d.left = append(d.left, p)
		}
	}
	for _, t := range sortedTracks(cur.tracks) {
		if _, ok := old.tracks[t.ID]; !ok {
			d.published = append(d.published, t)
		}
	}
	for _, t := range sortedTracks(old.tracks) {
		if _, ok := cur.tracks[t.ID]; !ok {
			d.unpublished = append(d.unpublished, t)
		}
	}
	return d
}

func sortedTracks(m map[string]core.TrackInfo) []core.TrackInfo {
	ts := make([]core.TrackInfo, 0, len(m))
	for _, t := range m {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	return ts
}
