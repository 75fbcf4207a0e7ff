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
	if !p.claims.Grants.CanPublish {
		return protocol.SDP{}, core.Errorf(core.CodeForbidden, "token does not grant publishing")
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
	for _, o := range tracks {
		info := core.TrackInfo{
			ClientTrackID: o.ClientTrackID, ParticipantID: p.id, Identity: p.claims.Identity,
			Kind: core.TrackKind(o.Kind.String()), StreamID: o.StreamID,
		}
		dec, err := p.room.m.deps.Policy.Decide(ctx, core.PolicyRequest{
			Action: core.ActionPublish, Room: p.room.name, ParticipantID: p.id, Claims: p.claims, Track: &info,
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
	p.tracks[info.ID] = &published{f: f, info: info}
	r.broadcastLocked(nil, protocol.TypeTrackPublished, info)
	var subs []*Participant
	for _, o := range r.participants {
		if o != p && o.autoSubscribe && o.claims.Grants.CanSubscribe {
			subs = append(subs, o)
		}
	}
	r.mu.Unlock()
	p.log.Info("track published", "track", info.ID, "kind", info.Kind, "codec", info.MimeType)
	for _, o := range subs {
		if err := o.subscribe(context.Background(), info); err != nil {
			o.log.Info("auto-subscribe refused", "track", info.ID, "err", err)
		}
	}
}

// Unpublish stops forwarding one of the participant's tracks.
func (p *Participant) Unpublish(trackID string) error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.tracks[trackID] == nil {
		return core.Errorf(core.CodeNotFound, "no published track %q", trackID)
	}
	r.unpublishLocked(p, trackID)
	return nil
}

// unpublishLocked removes owner's track from every subscriber. r.mu held.
func (r *Room) unpublishLocked(owner *Participant, trackID string) {
	if pt := owner.tracks[trackID]; pt != nil {
		r.m.retired.add(pt.f.Stats())
	}
	delete(owner.tracks, trackID)
	for _, o := range r.participants {
		if o.subscribed[trackID] {
			delete(o.subscribed, trackID)
			if err := o.sub.Unsubscribe(trackID); err != nil {
				o.log.Debug("unsubscribe", "track", trackID, "err", err)
			}
		}
	}
	r.broadcastLocked(nil, protocol.TypeTrackUnpublished, protocol.TrackUnpublished{TrackID: trackID, ParticipantID: owner.id})
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
	if !p.claims.Grants.CanSubscribe || p.sub == nil {
		return core.Errorf(core.CodeForbidden, "token does not grant subscribing")
	}
	if t.ParticipantID == p.id {
		return core.Errorf(core.CodeBadRequest, "cannot subscribe to own track %q", t.ID)
	}
	dec, err := p.room.m.deps.Policy.Decide(ctx, core.PolicyRequest{
		Action: core.ActionSubscribe, Room: p.room.name, ParticipantID: p.id, Claims: p.claims, Track: &t,
	})
	if err := denial(dec, err, "subscribe"); err != nil {
		return err
	}
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	owner, pt := r.trackLocked(t.ID)
	if pt == nil || p.left {
		return core.Errorf(core.CodeNotFound, "track %q is gone", t.ID)
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
		delete(p.subscribed, id)
		if err := p.sub.Unsubscribe(id); err != nil {
			p.log.Debug("unsubscribe", "track", id, "err", err)
		}
	}
	if len(missing) > 0 {
		return core.Errorf(core.CodeNotFound, "not subscribed to %s", strings.Join(missing, ", "))
	}
	return nil
}

// SubAnswer applies the client's answer to the latest subscriber offer.
func (p *Participant) SubAnswer(answer protocol.SDP) error {
	if p.sub == nil {
		return core.Errorf(core.CodeBadRequest, "no subscriber connection: token does not grant subscribing")
	}
	if answer.Type != "answer" {
		return core.Errorf(core.CodeInvalidSDP, "sub_answer needs an answer, got type %q", answer.Type)
	}
	return p.sub.SetAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP})
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
		if p.sub == nil {
			return core.Errorf(core.CodeBadRequest, "no subscriber connection")
		}
		return wrapICE(p.sub.AddICECandidate(ic))
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
	if p.sub != nil {
		p.sub.Renegotiate()
	}
}

func (p *Participant) String() string { return fmt.Sprintf("%s(%s)", p.id, p.claims.Identity) }
