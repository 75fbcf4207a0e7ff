package room

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/core/sfu"
)

// Participant is one member of a room. Its methods are called from the
// goroutine that owns its signaling session, and from media callbacks.
//
// Mutable fields are guarded by the room's mutex, except sink (atomic) and
// the publisher (pubMu-free: created once under the room's mutex).
type Participant struct {
	id            string
	claims        core.Claims
	room          *Room
	autoSubscribe bool
	maxBitrate    int
	log           *slog.Logger
	sink          atomic.Pointer[sinkBox]

	sub *sfu.Subscriber // nil when the token does not grant subscribing

	// guarded by room.mu
	pub        *sfu.Publisher
	tracks     map[string]*published // by Parley track id
	subscribed map[string]bool       // Parley track ids
	left       bool
	joinedAt   time.Time
	movedTo    string // where the client should join again, with ReasonMoved
}

type sinkBox struct{ s Sink }

type published struct {
	f    *sfu.Forwarder
	info core.TrackInfo
}

func newParticipant(r *Room, c core.Claims, opts JoinOptions, maxBitrate int, sink Sink) (*Participant, error) {
	p := &Participant{
		id: core.NewID(core.PrefixParticipant), claims: c, room: r,
		autoSubscribe: opts.AutoSubscribe, maxBitrate: maxBitrate,
		tracks: make(map[string]*published), subscribed: make(map[string]bool),
		joinedAt: time.Now(),
	}
	p.log = r.m.deps.Log.With("room", r.name, "participant", p.id, "identity", c.Identity)
	p.sink.Store(&sinkBox{sink})
	if c.Grants.CanSubscribe {
		sub, err := r.m.deps.Engine.NewSubscriber(sfu.SubscriberHandlers{
			OnICECandidate: func(ic *webrtc.ICECandidateInit) { p.sendCandidate(protocol.TargetSubscriber, ic) },
			OnOffer: func(o webrtc.SessionDescription) {
				p.send(protocol.TypeSubOffer, protocol.SubOffer{Offer: protocol.SDP{Type: o.Type.String(), SDP: o.SDP}})
			},
			OnState: p.onMediaState,
		})
		if err != nil {
			return nil, core.Errorf(core.CodeInternal, "create subscriber connection: %w", err)
		}
		p.sub = sub
	}
	return p, nil
}

// ID returns the participant's id.
func (p *Participant) ID() string { return p.id }

// Claims returns the verified token claims the participant joined with.
func (p *Participant) Claims() core.Claims { return p.claims }

// Room returns the participant's room.
func (p *Participant) Room() *Room { return p.room }

// SetSink redirects the participant's events, after a session resume.
func (p *Participant) SetSink(s Sink) { p.sink.Store(&sinkBox{s}) }

func (p *Participant) send(typ string, data any) {
	if b := p.sink.Load(); b != nil && b.s != nil {
		b.s.Send(typ, data)
	}
}

func (p *Participant) sendCandidate(target string, ic *webrtc.ICECandidateInit) {
	if ic == nil {
		return // end of gathering: the browser infers it; nothing to send
	}
	p.send(protocol.TypeTrickle, protocol.Trickle{Target: target, Candidate: protocol.ICECandidate{
		Candidate: ic.Candidate, SDPMid: ic.SDPMid, SDPMLineIndex: ic.SDPMLineIndex, UsernameFragment: ic.UsernameFragment,
	}})
}

// Info describes the participant to others.
func (p *Participant) Info() protocol.ParticipantInfo {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.infoLocked()
}

func (p *Participant) infoLocked() protocol.ParticipantInfo {
	info := protocol.ParticipantInfo{
		ID: p.id, Identity: p.claims.Identity, Name: p.claims.Name, Metadata: p.claims.Metadata,
		Grants: p.claims.Grants, Tracks: make([]core.TrackInfo, 0, len(p.tracks)),
	}
	for _, t := range p.tracks {
		info.Tracks = append(info.Tracks, t.info)
	}
	sort.Slice(info.Tracks, func(i, j int) bool { return info.Tracks[i].ID < info.Tracks[j].ID })
	return info
}

// Snapshot describes the room as this participant sees it.
func (p *Participant) Snapshot() protocol.RoomInfo { return p.room.snapshotFor(p) }

// SendData delivers payload to the room, or to the participant with id to.
func (p *Participant) SendData(to string, payload json.RawMessage) error {
	if !p.claims.Grants.CanPublishData {
		return core.Errorf(core.CodeForbidden, "token does not grant sending data")
	}
	if max := p.room.m.cfg.MaxDataPayload; len(payload) > max {
		return core.Errorf(core.CodeBadRequest, "data payload of %d bytes exceeds %d", len(payload), max)
	}
	if len(payload) == 0 || !json.Valid(payload) {
		return core.Errorf(core.CodeBadRequest, "data payload must be a JSON value")
	}
	ev := protocol.DataEvent{From: p.id, FromIdentity: p.claims.Identity, To: to, Payload: payload}
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.left {
		return core.ErrSessionExpired
	}
	if to == "" {
		r.broadcastLocked(p, protocol.TypeData, ev)
		return nil
	}
	o := r.participants[to]
	if o == nil {
		return core.Errorf(core.CodeNotFound, "no participant %q in room %q", to, r.name)
	}
	o.send(protocol.TypeData, ev)
	return nil
}

// Leave removes the participant from its room: its tracks are unpublished
// for everyone, its media connections closed, presence reported. Calling
// Leave again does nothing.
func (p *Participant) Leave(reason string) {
	r := p.room
	r.mu.Lock()
	if p.left {
		r.mu.Unlock()
		return
	}
	p.left = true
	delete(r.participants, p.id)
	if r.byIdentity[p.claims.Identity] == p {
		delete(r.byIdentity, p.claims.Identity)
	}
	for id := range p.tracks {
		r.unpublishLocked(p, id)
	}
	r.broadcastLocked(p, protocol.TypeParticipantLeft, protocol.ParticipantLeft{
		ParticipantID: p.id, Identity: p.claims.Identity, Reason: reason,
	})
	empty := len(r.participants) == 0
	r.mu.Unlock()

	if b := p.sink.Load(); b != nil && b.s != nil {
		b.s.Removed(reason)
	}
	p.closeMedia()
	p.log.Info("participant left", "reason", reason, "duration", time.Since(p.joinedAt).Round(time.Millisecond))
	r.m.deps.Presence.Presence(context.Background(), core.PresenceEvent{
		Kind: core.PresenceLeft, Room: r.name, Identity: p.claims.Identity, ParticipantID: p.id,
		Node: r.m.cfg.NodeID, Metadata: p.claims.Metadata, At: time.Now(), Reason: reason,
	})
	if empty {
		r.m.roomEmptied(r)
	}
}

// moveTo removes the participant with ReasonMoved, telling its client to
// join again at url.
func (p *Participant) moveTo(url string) {
	p.room.mu.Lock()
	p.movedTo = url
	p.room.mu.Unlock()
	p.Leave(ReasonMoved)
}

// MovedTo returns the signaling URL a participant removed with ReasonMoved
// should join again at; "" means where it first connected.
func (p *Participant) MovedTo() string {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.movedTo
}

// Left reports whether the participant has left.
func (p *Participant) Left() bool {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.left
}

func (p *Participant) closeMedia() {
	p.room.mu.Lock()
	pub := p.pub
	p.room.mu.Unlock()
	if pub != nil {
		if err := pub.Close(); err != nil {
			p.log.Debug("close publisher", "err", err)
		}
	}
	if p.sub != nil {
		if err := p.sub.Close(); err != nil {
			p.log.Debug("close subscriber", "err", err)
		}
	}
}

// onMediaState removes the participant when a media connection fails.
func (p *Participant) onMediaState(s webrtc.PeerConnectionState) {
	if s == webrtc.PeerConnectionStateFailed {
		p.log.Info("media connection failed")
		go p.Leave(ReasonMediaFailed) // not on pion's goroutine: Leave closes the connection
	}
}
