package room

import (
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
// goroutine that owns its signaling session, from media callbacks and from
// the server API (through the Manager).
//
// Mutable fields are guarded by the room's mutex, except sink (atomic).
type Participant struct {
	id            string
	claims        core.Claims // as verified at join; grants below are current
	room          *Room
	autoSubscribe bool
	maxBitrate    int
	log           *slog.Logger
	sink          atomic.Pointer[sinkBox]

	// guarded by room.mu
	grants   core.Grants
	sub      *sfu.Subscriber // nil until the participant may subscribe
	pub      *sfu.Publisher
	tracks   map[string]*published // by Parley track id
	withheld map[string]*published // tracks that arrived or stayed while publishing is not granted
	// offered holds the client track ids of the last publish offer applied,
	// minus those unpublished since: media of any other track (a packet of
	// an unpublished track still in flight, which pion announces as a new
	// track) is not published.
	offered    map[string]bool
	subscribed map[string]bool // Parley track ids
	left       bool
	joinedAt   time.Time
	movedTo    string // where the client should join again, with ReasonMoved
	detail     string // the operator's words on why it was removed, if any
}

type sinkBox struct{ s Sink }

type published struct {
	f     *sfu.Forwarder
	info  core.TrackInfo
	muted bool // by the server API (MuteTrack)
}

func newParticipant(r *Room, c core.Claims, opts JoinOptions, maxBitrate int, sink Sink) (*Participant, error) {
	p := &Participant{
		id: core.NewID(core.PrefixParticipant), claims: c, room: r, grants: c.Grants,
		autoSubscribe: opts.AutoSubscribe, maxBitrate: maxBitrate,
		tracks: make(map[string]*published), withheld: make(map[string]*published), offered: make(map[string]bool),
		subscribed: make(map[string]bool), joinedAt: time.Now(),
	}
	p.log = r.m.deps.Log.With("room", r.name, "participant", p.id, "identity", c.Identity)
	p.sink.Store(&sinkBox{sink})
	if c.Grants.CanSubscribe {
		sub, err := p.newSubscriber()
		if err != nil {
			return nil, err
		}
		p.sub = sub
	}
	return p, nil
}

// newSubscriber creates the participant's receiving connection.
func (p *Participant) newSubscriber() (*sfu.Subscriber, error) {
	sub, err := p.room.m.deps.Engine.NewSubscriber(sfu.SubscriberHandlers{
		OnICECandidate: func(ic *webrtc.ICECandidateInit) { p.sendCandidate(protocol.TargetSubscriber, ic) },
		OnOffer: func(o webrtc.SessionDescription) {
			p.send(protocol.TypeSubOffer, protocol.SubOffer{Offer: protocol.SDP{Type: o.Type.String(), SDP: o.SDP}})
		},
		OnState: p.onMediaState,
	})
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "create subscriber connection: %w", err)
	}
	return sub, nil
}

// subscriber returns the receiving connection, nil if there is none.
func (p *Participant) subscriber() *sfu.Subscriber {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.sub
}

// Grants returns what the participant may do now: the token's grants as
// narrowed by the policy at join, or as last set by the server API.
func (p *Participant) Grants() core.Grants {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.grants
}

// claimsLocked returns the claims with the current grants, for policy
// requests. room.mu held.
func (p *Participant) claimsLocked() core.Claims {
	c := p.claims
	c.Grants = p.grants
	return c
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
		Grants: p.grants, Tracks: make([]core.TrackInfo, 0, len(p.tracks)),
	}
	for _, t := range p.tracks {
		info.Tracks = append(info.Tracks, t.info)
		if t.muted {
			info.MutedTracks = append(info.MutedTracks, t.info.ID)
		}
	}
	sort.Slice(info.Tracks, func(i, j int) bool { return info.Tracks[i].ID < info.Tracks[j].ID })
	sort.Strings(info.MutedTracks)
	return info
}

// Snapshot describes the room as this participant sees it.
func (p *Participant) Snapshot() protocol.RoomInfo { return p.room.snapshotFor(p) }

// SendData delivers payload to the room, or to the participant with id to.
func (p *Participant) SendData(to string, payload json.RawMessage) error {
	r := p.room
	if err := r.m.checkPayload(payload); err != nil {
		return err
	}
	ev := protocol.DataEvent{From: p.id, FromIdentity: p.claims.Identity, To: to, Payload: payload}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.left {
		return core.ErrSessionExpired
	}
	if !p.grants.CanPublishData {
		return core.Errorf(core.CodeForbidden, "not allowed to send data")
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
	for _, id := range sortedKeys(p.tracks) {
		r.unpublishLocked(p, id)
	}
	for _, pt := range p.withheld {
		r.m.retired.add(pt.f.Stats())
	}
	clear(p.withheld)
	delete(r.participants, p.id)
	if r.byIdentity[p.claims.Identity] == p {
		delete(r.byIdentity, p.claims.Identity)
	}
	r.broadcastLocked(p, protocol.TypeParticipantLeft, protocol.ParticipantLeft{
		ParticipantID: p.id, Identity: p.claims.Identity, Reason: reason,
	})
	r.participantEventLocked(core.PresenceLeft, p, reason)
	empty := len(r.participants) == 0
	if empty && r.removed {
		r.finishLocked()
	}
	r.mu.Unlock()

	if b := p.sink.Load(); b != nil && b.s != nil {
		b.s.Removed(reason)
	}
	p.closeMedia()
	p.log.Info("participant left", "reason", reason, "duration", time.Since(p.joinedAt).Round(time.Millisecond))
	r.flushPresence()
	if empty {
		r.m.roomEmptied(r)
	}
}

// remove makes the participant leave for reason, with the operator's
// detail for its client.
func (p *Participant) remove(reason, detail string) {
	p.room.mu.Lock()
	p.detail = detail
	p.room.mu.Unlock()
	p.Leave(reason)
}

// RemovalDetail returns the operator's words on why the participant was
// removed (RemoveParticipant, CloseRoom), "" if none were given.
func (p *Participant) RemovalDetail() string {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.detail
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
	pub, sub := p.pub, p.sub
	p.room.mu.Unlock()
	if pub != nil {
		if err := pub.Close(); err != nil {
			p.log.Debug("close publisher", "err", err)
		}
	}
	if sub != nil {
		if err := sub.Close(); err != nil {
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
