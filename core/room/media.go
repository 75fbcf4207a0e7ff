package room

import (
	"context"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/core/sfu"
)

// Publish applies the client's offer for its publishing connection and
// returns the answer. Every track the offer adds is checked against the
// token's grants, the track limit and the policy before anything is applied.
func (p *Participant) Publish(ctx context.Context, offer protocol.SDP) (protocol.SDP, error) {
	if !p.Grants().CanPublish {
		return protocol.SDP{}, core.Errorf(core.CodeForbidden, "not allowed to publish")
	}
	if offer.Type != "offer" {
		return protocol.SDP{}, core.Errorf(core.CodeInvalidSDP, "publish needs an offer, got type %q", offer.Type)
	}
	offered, err := sfu.OfferedTracks(offer.SDP)
	if err != nil {
		return protocol.SDP{}, err
	}
	if max := p.room.m.cfg.MaxTracks; len(offered) > max {
		return protocol.SDP{}, core.Errorf(core.CodeTooManyTracks, "offer sends %d tracks; at most %d allowed", len(offered), max)
	}
	if err := p.decidePublish(ctx, p.newOffered(offered)); err != nil {
		return protocol.SDP{}, err
	}
	pub, err := p.publisher()
	if err != nil {
		return protocol.SDP{}, err
	}
	ans, err := pub.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP})
	if err != nil {
		return protocol.SDP{}, err
	}
	// Before the answer leaves: media (and pion's OnTrack) can only follow it.
	p.room.mu.Lock()
	clear(p.offered)
	for _, o := range offered {
		p.offered[o.ClientTrackID] = true
	}
	p.room.mu.Unlock()
	return protocol.SDP{Type: ans.Type.String(), SDP: ans.SDP}, nil
}

// newOffered filters out tracks already published.
func (p *Participant) newOffered(offered []sfu.OfferedTrack) []sfu.OfferedTrack {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	known := make(map[string]bool, len(p.tracks))
	for _, t := range p.tracks {
		known[t.info.ClientTrackID] = true
	}
	var out []sfu.OfferedTrack
	for _, o := range offered {
		if !known[o.ClientTrackID] {
			out = append(out, o)
		}
	}
	return out
}

func (p *Participant) decidePublish(ctx context.Context, tracks []sfu.OfferedTrack) error {
	p.room.mu.Lock()
	claims := p.claimsLocked()
	p.room.mu.Unlock()
	for _, o := range tracks {
		info := core.TrackInfo{
			ClientTrackID: o.ClientTrackID, ParticipantID: p.id, Identity: p.claims.Identity,
			Kind: core.TrackKind(o.Kind.String()), StreamID: o.StreamID,
		}
		dec, err := p.room.m.deps.Policy.Decide(ctx, core.PolicyRequest{
			Action: core.ActionPublish, Room: p.room.name, ParticipantID: p.id, Claims: claims, Track: &info,
		})
		if err := denial(dec, err, "publish "+string(info.Kind)); err != nil {
			return err
		}
	}
	return nil
}

// publisher returns the publishing connection, creating it on first use.
func (p *Participant) publisher() (*sfu.Publisher, error) {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.left {
		return nil, core.ErrSessionExpired
	}
	if p.pub != nil {
		return p.pub, nil
	}
	pub, err := r.m.deps.Engine.NewPublisher(sfu.PublisherHandlers{
		OnICECandidate: func(ic *webrtc.ICECandidateInit) { p.sendCandidate(protocol.TargetPublisher, ic) },
		OnTrack:        p.onTrack,
		OnTrackEnded:   func(f *sfu.Forwarder) { p.Unpublish(f.ID()) },
		OnState:        p.onMediaState,
	})
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "create publisher connection: %w", err)
	}
	p.pub = pub
	return pub, nil
}

// onTrack announces a track whose media started and subscribes the
// participants that subscribe automatically.
func (p *Participant) onTrack(f *sfu.Forwarder) {
	r := p.room
	info := core.TrackInfo{
		ID: f.ID(), ClientTrackID: f.ClientTrackID(), ParticipantID: p.id, Identity: p.claims.Identity,
		Kind: core.TrackKind(f.Kind().String()), MimeType: f.Codec().MimeType, StreamID: f.StreamID(),
	}
	r.mu.Lock()
	if p.left {
		r.mu.Unlock()
		return
	}
	// A section without msid offers a track whose id is unknown: accept
	// any then.
	if !p.offered[info.ClientTrackID] && !p.offered[""] {
		r.mu.Unlock()
		p.log.Info("track ignored: not in the publisher's current offer", "track", info.ID, "client_track", info.ClientTrackID)
		return
	}
	pt := &published{f: f, info: info}
	if !p.grants.CanPublish {
		// Publishing was revoked while the offer was in flight: hold
		// the track back until it is granted again.
		p.withheld[info.ID] = pt
		r.mu.Unlock()
		p.log.Info("track withheld: publishing not granted", "track", info.ID)
		return
	}
	subs := r.publishLocked(p, pt)
	r.mu.Unlock()
	r.flushPresence()
	p.log.Info("track published", "track", info.ID, "kind", info.Kind, "codec", info.MimeType)
	autoSubscribe(info, subs)
}

// publishLocked makes owner's track pt available to the room and returns
// the participants to subscribe to it automatically. r.mu held.
func (r *Room) publishLocked(owner *Participant, pt *published) []*Participant {
	owner.tracks[pt.info.ID] = pt
	r.broadcastLocked(nil, protocol.TypeTrackPublished, pt.info)
	if pt.muted {
		r.broadcastLocked(nil, protocol.TypeTrackMuted, protocol.TrackMuted{TrackID: pt.info.ID, ParticipantID: owner.id, Muted: true})
	}
	r.trackEventLocked(core.PresenceTrackPublished, owner, pt.info)
	var subs []*Participant
	for _, o := range r.participants {
		if o != owner && o.autoSubscribe && o.grants.CanSubscribe {
			subs = append(subs, o)
		}
	}
	return subs
}

// autoSubscribe subscribes subs to track t, logging refusals.
func autoSubscribe(t core.TrackInfo, subs []*Participant) {
	for _, o := range subs {
		if err := o.subscribe(context.Background(), t); err != nil {
			o.log.Info("auto-subscribe refused", "track", t.ID, "err", err)
		}
	}
}

// Unpublish stops forwarding one of the participant's tracks.
func (p *Participant) Unpublish(trackID string) error {
	r := p.room
	r.mu.Lock()
	if pt := p.withheld[trackID]; pt != nil {
		delete(p.withheld, trackID)
		delete(p.offered, pt.info.ClientTrackID)
		r.m.retired.add(pt.f.Stats())
		r.mu.Unlock()
		return nil
	}
	if p.tracks[trackID] == nil {
		r.mu.Unlock()
		return core.Errorf(core.CodeNotFound, "no published track %q", trackID)
	}
	delete(p.offered, p.tracks[trackID].info.ClientTrackID)
	r.unpublishLocked(p, trackID)
	r.mu.Unlock()
	r.flushPresence()
	return nil
}

// unpublishLocked removes owner's track from every subscriber and ends its
// forwarding statistics. r.mu held.
func (r *Room) unpublishLocked(owner *Participant, trackID string) {
	if pt := r.withdrawLocked(owner, trackID); pt != nil {
		r.m.retired.add(pt.f.Stats())
	}
}

// withdrawLocked takes owner's track off the room: subscribers lose it
// and everyone is told. It returns the track, nil if it was not
// published. r.mu held.
func (r *Room) withdrawLocked(owner *Participant, trackID string) *published {
	pt := owner.tracks[trackID]
	if pt == nil {
		return nil
	}
	delete(owner.tracks, trackID)
	for _, o := range r.participants {
		if o.subscribed[trackID] {
			o.unsubscribeLocked(trackID)
		}
	}
	r.broadcastLocked(nil, protocol.TypeTrackUnpublished, protocol.TrackUnpublished{TrackID: trackID, ParticipantID: owner.id})
	r.trackEventLocked(core.PresenceTrackUnpublished, owner, pt.info)
	return pt
}

// subscribeAll subscribes to tracks, logging refusals.
func (p *Participant) subscribeAll(tracks []core.TrackInfo) {
	for _, t := range tracks {
		if err := p.subscribe(context.Background(), t); err != nil {
			p.log.Info("auto-subscribe refused", "track", t.ID, "err", err)
		}
	}
}

// subscribe asks the policy, then starts forwarding the track to p.
func (p *Participant) subscribe(ctx context.Context, t core.TrackInfo) error {
	r := p.room
	r.mu.Lock()
	claims, may := p.claimsLocked(), p.grants.CanSubscribe && p.sub != nil
	r.mu.Unlock()
	if !may {
		return core.Errorf(core.CodeForbidden, "not allowed to subscribe")
	}
	if t.ParticipantID == p.id {
		return core.Errorf(core.CodeBadRequest, "cannot subscribe to own track %q", t.ID)
	}
	dec, err := r.m.deps.Policy.Decide(ctx, core.PolicyRequest{
		Action: core.ActionSubscribe, Room: r.name, ParticipantID: p.id, Claims: claims, Track: &t,
	})
	if err := denial(dec, err, "subscribe"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	owner, pt := r.trackLocked(t.ID)
	if pt == nil || p.left {
		return core.Errorf(core.CodeNotFound, "track %q is gone", t.ID)
	}
	if !p.grants.CanSubscribe || p.sub == nil {
		return core.Errorf(core.CodeForbidden, "not allowed to subscribe")
	}
	if p.subscribed[t.ID] {
		return nil
	}
	if err := p.sub.Subscribe(pt.f, owner.id); err != nil {
		return core.Errorf(core.CodeInternal, "subscribe %s: %w", t.ID, err)
	}
	p.subscribed[t.ID] = true
	return nil
}

// Subscribe subscribes to the tracks with the given ids.
func (p *Participant) Subscribe(ctx context.Context, trackIDs []string) error {
	for _, id := range trackIDs {
		p.room.mu.Lock()
		_, pt := p.room.trackLocked(id)
		p.room.mu.Unlock()
		if pt == nil {
			return core.Errorf(core.CodeNotFound, "no track %q in room %q", id, p.room.name)
		}
		if err := p.subscribe(ctx, pt.info); err != nil {
			return err
		}
	}
	return nil
}

// Unsubscribe stops receiving the tracks with the given ids.
func (p *Participant) Unsubscribe(trackIDs []string) error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	var missing []string
	for _, id := range trackIDs {
		if !p.subscribed[id] {
			missing = append(missing, id)
			continue
		}
		p.unsubscribeLocked(id)
	}
	if len(missing) > 0 {
		return core.Errorf(core.CodeNotFound, "not subscribed to %s", strings.Join(missing, ", "))
	}
	return nil
}

// unsubscribeLocked stops forwarding track id to p. room.mu held.
func (p *Participant) unsubscribeLocked(id string) {
	delete(p.subscribed, id)
	if err := p.sub.Unsubscribe(id); err != nil {
		p.log.Debug("unsubscribe", "track", id, "err", err)
	}
}

// SubAnswer applies the client's answer to the latest subscriber offer.
func (p *Participant) SubAnswer(answer protocol.SDP) error {
	sub := p.subscriber()
	if sub == nil {
		return core.Errorf(core.CodeBadRequest, "no subscriber connection: subscribing is not granted")
	}
	if answer.Type != "answer" {
		return core.Errorf(core.CodeInvalidSDP, "sub_answer needs an answer, got type %q", answer.Type)
	}
	return sub.SetAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP})
}

// Trickle adds a remote ICE candidate to one of the two connections.
func (p *Participant) Trickle(target string, c protocol.ICECandidate) error {
	ic := webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}
	switch target {
	case protocol.TargetPublisher:
		p.room.mu.Lock()
		pub := p.pub
		p.room.mu.Unlock()
		if pub == nil {
			return core.Errorf(core.CodeBadRequest, "no publisher connection yet: send publish first")
		}
		return wrapICE(pub.AddICECandidate(ic))
	case protocol.TargetSubscriber:
		sub := p.subscriber()
		if sub == nil {
			return core.Errorf(core.CodeBadRequest, "no subscriber connection")
		}
		return wrapICE(sub.AddICECandidate(ic))
	default:
		return core.Errorf(core.CodeBadRequest, "trickle target must be %q or %q, got %q", protocol.TargetPublisher, protocol.TargetSubscriber, target)
	}
}

func wrapICE(err error) error {
	if err == nil || core.CodeOf(err) != core.CodeInternal {
		return err
	}
	return core.Errorf(core.CodeBadRequest, "ice candidate rejected: %v", err)
}

// Renegotiate makes the subscriber connection offer again, after a resume.
func (p *Participant) Renegotiate() {
	if sub := p.subscriber(); sub != nil {
		sub.Renegotiate()
	}
}

func (p *Participant) String() string { return fmt.Sprintf("%s(%s)", p.id, p.claims.Identity) }
