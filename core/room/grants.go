package room

import (
	"context"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/core/sfu"
)

// UpdateGrants replaces what participant id of room may do, at once: its
// client gets a permissions event with the new grants. Revoking
// can_publish unpublishes its tracks (subscribers lose them and are told;
// media the client keeps sending is not forwarded, and tracks it adds are
// held back), granting it again publishes them again. Revoking
// can_subscribe drops its subscriptions; granting it subscribes it to the
// room's tracks if it subscribes automatically. Revoking can_publish_data
// refuses its data messages from then on. The policy is not consulted:
// the server API is trusted.
func (m *Manager) UpdateGrants(ctx context.Context, room, id string, g core.Grants) error {
	p, err := m.findParticipant(room, id)
	if err != nil {
		return err
	}
	return p.setGrants(g)
}

func (p *Participant) setGrants(g core.Grants) error {
	r := p.room
	var fresh *sfu.Subscriber
	if g.CanSubscribe && p.subscriber() == nil {
		sub, err := p.newSubscriber()
		if err != nil {
			return err
		}
		fresh = sub
	}
	r.mu.Lock()
	if p.left {
		r.mu.Unlock()
		if fresh != nil {
			_ = fresh.Close()
		}
		return core.Errorf(core.CodeNotFound, "participant %q has left", p.id)
	}
	if fresh != nil && p.sub == nil {
		p.sub, fresh = fresh, nil
	}
	old := p.grants
	p.grants = g
	var restored []*published
	subs := map[*published][]*Participant{}
	switch {
	case old.CanPublish && !g.CanPublish:
		for _, id := range sortedKeys(p.tracks) {
			p.withheld[id] = r.withdrawLocked(p, id)
		}
	case !old.CanPublish && g.CanPublish:
		for _, id := range sortedKeys(p.withheld) {
			pt := p.withheld[id]
			delete(p.withheld, id)
			subs[pt] = r.publishLocked(p, pt)
			restored = append(restored, pt)
		}
	}
	if old.CanSubscribe && !g.CanSubscribe {
		for _, id := range sortedKeys(p.subscribed) {
			p.unsubscribeLocked(id)
		}
	}
	var wanted []core.TrackInfo
	if !old.CanSubscribe && g.CanSubscribe {
		wanted = r.tracksFor(p)
	}
	p.send(protocol.TypePermissions, protocol.Permissions{Grants: g})
	r.mu.Unlock()
	if fresh != nil { // another update created one first
		_ = fresh.Close()
	}
	r.flushPresence()
	p.log.Info("grants updated", "from", old, "to", g)
	for _, pt := range restored {
		autoSubscribe(pt.info, subs[pt])
	}
	p.subscribeAll(wanted)
	return nil
}

// MuteTrack stops (muted) or resumes forwarding participantID's track
// trackID to its subscribers. Everyone in the room, the publisher
// included, gets a track_muted event; the track stays published, and
// snapshots list it in muted_tracks. Unmuting asks the publisher for a
// keyframe so video resumes at once. Muting a muted track (or unmuting
// an unmuted one) changes nothing and sends no event.
func (m *Manager) MuteTrack(ctx context.Context, room, participantID, trackID string, muted bool) error {
	p, err := m.findParticipant(room, participantID)
	if err != nil {
		return err
	}
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	pt := p.tracks[trackID]
	if pt == nil {
		pt = p.withheld[trackID]
	}
	if pt == nil {
		return core.Errorf(core.CodeNotFound, "participant %q publishes no track %q", participantID, trackID)
	}
	if pt.muted == muted {
		return nil
	}
	pt.muted = muted
	pt.f.SetMuted(muted)
	if p.tracks[trackID] == pt {
		r.broadcastLocked(nil, protocol.TypeTrackMuted, protocol.TrackMuted{TrackID: trackID, ParticipantID: p.id, Muted: muted})
	}
	p.log.Info("track mute changed by the server API", "track", trackID, "muted", muted)
	return nil
}
