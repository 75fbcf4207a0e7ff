package client

import (
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// handlers are the user's callbacks.
type handlers struct {
	onTrack            func(*RemoteTrack)
	onParticipantJoin  func(Participant)
	onParticipantLeave func(ParticipantLeft)
	onTrackPublished   func(TrackInfo)
	onTrackUnpublished func(TrackInfo)
	onData             func(DataMessage)
	onPermissions      func(core.Grants)
	onTrackMuted       func(TrackMuted)
	onState            func(State)
	onReconnect        func()
	onClose            func(error)
}

// Callbacks run one at a time on the client's callback goroutine, in the
// order of the events that caused them, and never on the goroutine reading
// the signaling connection. Registering a callback replaces the previous
// one; nil removes it. A callback sees the client state as of its event or
// later.

// OnTrack sets the callback for a remote track that starts arriving on the
// subscriber connection. Read its media in a goroutine of your own.
func (c *Client) OnTrack(f func(*RemoteTrack)) { c.setHandler(func(h *handlers) { h.onTrack = f }) }

// OnParticipantJoined sets the callback for a participant entering the room.
// Participants already there at Connect are in Participants instead.
func (c *Client) OnParticipantJoined(f func(Participant)) {
	c.setHandler(func(h *handlers) { h.onParticipantJoin = f })
}

// OnParticipantLeft sets the callback for a participant leaving the room.
// Reason is empty when the departure was learned from the snapshot of a
// resumed session.
func (c *Client) OnParticipantLeft(f func(ParticipantLeft)) {
	c.setHandler(func(h *handlers) { h.onParticipantLeave = f })
}

// OnTrackPublished sets the callback for a track published in the room,
// including this client's own tracks (compare ParticipantID with
// LocalParticipant().ID to tell them apart).
func (c *Client) OnTrackPublished(f func(TrackInfo)) {
	c.setHandler(func(h *handlers) { h.onTrackPublished = f })
}

// OnTrackUnpublished sets the callback for a track that stopped, including
// the tracks of a participant that left.
func (c *Client) OnTrackUnpublished(f func(TrackInfo)) {
	c.setHandler(func(h *handlers) { h.onTrackUnpublished = f })
}

// OnData sets the callback for data messages sent to the room or to this
// participant.
func (c *Client) OnData(f func(DataMessage)) { c.setHandler(func(h *handlers) { h.onData = f }) }

// OnPermissions sets the callback for a change of what this participant
// may do, made by the server API. What was revoked has taken effect: the
// server unpublished this client's tracks (no CanPublish; they are
// published again when it is granted back, while the local tracks keep
// sending), dropped its subscriptions (no CanSubscribe) or refuses its
// data messages (no CanPublishData). LocalParticipant().Grants is updated
// before the callback runs.
func (c *Client) OnPermissions(f func(core.Grants)) {
	c.setHandler(func(h *handlers) { h.onPermissions = f })
}

// OnTrackMuted sets the callback for a track the server muted (no media is
// forwarded) or unmuted, this client's own tracks included.
// Participant.MutedTracks reflects it before the callback runs.
func (c *Client) OnTrackMuted(f func(TrackMuted)) {
	c.setHandler(func(h *handlers) { h.onTrackMuted = f })
}

// OnStateChange sets the callback for connection state changes.
func (c *Client) OnStateChange(f func(State)) { c.setHandler(func(h *handlers) { h.onState = f }) }

// OnReconnect sets the callback for a session resumed on a new signaling
// connection. Changes to the room made meanwhile have been reported through
// the participant and track callbacks before it runs.
func (c *Client) OnReconnect(f func()) { c.setHandler(func(h *handlers) { h.onReconnect = f }) }

// OnClose sets the callback run once when a connected client is torn down,
// with the reason: nil after Leave or Close, otherwise an error matching
// ErrResumeFailed, ErrServerClosed or ErrDisconnected.
func (c *Client) OnClose(f func(error)) { c.setHandler(func(h *handlers) { h.onClose = f }) }

func (c *Client) setHandler(set func(*handlers)) {
	c.mu.Lock()
	set(&c.h)
	c.mu.Unlock()
}

// emit queues a callback; call receives the handlers current when it runs.
func (c *Client) emit(call func(h *handlers)) {
	c.callbacks.push(func() {
		c.mu.Lock()
		h := c.h
		c.mu.Unlock()
		call(&h)
	})
}

// dispatch runs queued callbacks until the queue is closed and drained.
func (c *Client) dispatch() {
	defer close(c.dispatchDone)
	for {
		f, ok := c.callbacks.pop(nil)
		if !ok {
			return
		}
		c.inCallback.Store(true)
		f()
		c.inCallback.Store(false)
	}
}

// onEvent handles a server event on the read loop. Room state is updated
// here, so it is never behind the events already read; media signaling goes
// to the worker, user callbacks to the dispatcher.
func (c *Client) onEvent(msg protocol.Message) {
	var err error
	switch msg.Type {
	case protocol.TypeSubOffer, protocol.TypeTrickle:
		c.signals.push(msg)
	case protocol.TypeParticipantJoined:
		err = c.onParticipantJoined(&msg)
	case protocol.TypeParticipantLeft:
		err = c.onParticipantLeft(&msg)
	case protocol.TypeTrackPublished:
		err = c.onTrackPublished(&msg)
	case protocol.TypeTrackUnpublished:
		err = c.onTrackUnpublished(&msg)
	case protocol.TypeData:
		err = c.onDataEvent(&msg)
	case protocol.TypePermissions:
		err = c.onPermissions(&msg)
	case protocol.TypeTrackMuted:
		err = c.onTrackMuted(&msg)
	case protocol.TypeClosing:
		err = c.onClosing(&msg)
	default:
		c.log.Debug("ignoring unknown event", "type", msg.Type)
	}
	if err != nil {
		c.log.Warn("bad event", "type", msg.Type, "error", err)
	}
}

func (c *Client) onParticipantJoined(msg *protocol.Message) error {
	var p protocol.ParticipantInfo
	if err := protocol.DecodeDataLenient(msg, &p); err != nil {
		return err
	}
	c.mu.Lock()
	if p.ID == c.room.self.ID {
		c.mu.Unlock()
		return nil
	}
	isNew := c.room.addParticipant(p)
	for _, t := range p.Tracks {
		c.room.addTrack(t)
	}
	c.mu.Unlock()
	if isNew {
		c.emit(func(h *handlers) {
			if h.onParticipantJoin != nil {
				h.onParticipantJoin(p)
			}
		})
	}
	return nil
}

func (c *Client) onParticipantLeft(msg *protocol.Message) error {
	var ev protocol.ParticipantLeft
	if err := protocol.DecodeDataLenient(msg, &ev); err != nil {
		return err
	}
	c.mu.Lock()
	_, gone, known := c.room.removeParticipant(ev.ParticipantID)
	c.mu.Unlock()
	if !known {
		return nil
	}
	c.emitTracksGone(gone)
	c.emit(func(h *handlers) {
		if h.onParticipantLeave != nil {
			h.onParticipantLeave(ev)
		}
	})
	return nil
}

func (c *Client) onTrackPublished(msg *protocol.Message) error {
	var t core.TrackInfo
	if err := protocol.DecodeDataLenient(msg, &t); err != nil {
		return err
	}
	c.mu.Lock()
	isNew := c.room.addTrack(t)
	var own *LocalTrack
	if t.ParticipantID == c.room.self.ID {
		own = c.local[t.ClientTrackID]
	}
	c.mu.Unlock()
	if own != nil {
		own.setPublished(t)
	}
	if isNew {
		c.emit(func(h *handlers) {
			if h.onTrackPublished != nil {
				h.onTrackPublished(t)
			}
		})
	}
	return nil
}

func (c *Client) onTrackUnpublished(msg *protocol.Message) error {
	var ev protocol.TrackUnpublished
	if err := protocol.DecodeDataLenient(msg, &ev); err != nil {
		return err
	}
	c.mu.Lock()
	t, known := c.room.removeTrack(ev.TrackID)
	c.mu.Unlock()
	if known {
		c.emitTracksGone([]core.TrackInfo{t})
	}
	return nil
}

func (c *Client) onPermissions(msg *protocol.Message) error {
	var ev protocol.Permissions
	if err := protocol.DecodeDataLenient(msg, &ev); err != nil {
		return err
	}
	c.mu.Lock()
	c.room.self.Grants = ev.Grants
	c.mu.Unlock()
	c.emit(func(h *handlers) {
		if h.onPermissions != nil {
			h.onPermissions(ev.Grants)
		}
	})
	return nil
}

func (c *Client) onTrackMuted(msg *protocol.Message) error {
	var ev protocol.TrackMuted
	if err := protocol.DecodeDataLenient(msg, &ev); err != nil {
		return err
	}
	c.mu.Lock()
	c.room.setMuted(ev.TrackID, ev.Muted)
	c.mu.Unlock()
	c.emit(func(h *handlers) {
		if h.onTrackMuted != nil {
			h.onTrackMuted(ev)
		}
	})
	return nil
}

func (c *Client) emitTracksGone(ts []core.TrackInfo) {
	for _, t := range ts {
		c.emit(func(h *handlers) {
			if h.onTrackUnpublished != nil {
				h.onTrackUnpublished(t)
			}
		})
	}
}

// onClosing records that the server ends the connection. Unless its code
// says the session survives the connection (idle timeout, oversized message,
// rate limit), the supervisor then closes the client instead of resuming.
func (c *Client) onClosing(msg *protocol.Message) error {
	var ev protocol.Closing
	if err := protocol.DecodeDataLenient(msg, &ev); err != nil {
		return err
	}
	c.log.Info("server is closing the connection", "reason", ev.Reason, "code", ev.Code)
	switch ev.Code {
	case core.CodeTimeout, core.CodeMessageTooLarge, core.CodeRateLimited:
		return nil // the session is detached, not ended: resume it
	}
	c.mu.Lock()
	if c.noResume == nil {
		c.noResume = serverClosedError(ev)
	}
	c.mu.Unlock()
	return nil
}

// closingErr returns the reason of a closing event that ended the session.
func (c *Client) closingErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noResume
}

// applySnapshot installs the room state of a join or resume response. After
// a resume, what changed meanwhile is reported as the events that were missed.
func (c *Client) applySnapshot(resp *protocol.JoinResponse, resumed bool) {
	cur := roomFromSnapshot(resp)
	c.mu.Lock()
	old := c.room
	c.room = cur
	cur = cur.clone() // the read loop changes c.room as soon as c.mu is free
	var own []*LocalTrack
	var infos []core.TrackInfo
	for _, t := range cur.tracks {
		if lt := c.local[t.ClientTrackID]; lt != nil && t.ParticipantID == cur.self.ID {
			own, infos = append(own, lt), append(infos, t)
		}
	}
	c.mu.Unlock()
	for i, lt := range own {
		lt.setPublished(infos[i])
	}
	if resumed {
		c.emitRoomDiff(&old, &cur)
	}
}

// emitRoomDiff reports what changed between two views of the room as the
// events that were missed.
func (c *Client) emitRoomDiff(old, cur *roomState) {
	d := diffRooms(old, cur)
	c.emitTracksGone(d.unpublished)
	for _, p := range d.left {
		ev := protocol.ParticipantLeft{ParticipantID: p.ID, Identity: p.Identity}
		c.emit(func(h *handlers) {
			if h.onParticipantLeave != nil {
				h.onParticipantLeave(ev)
			}
		})
	}
	for _, p := range d.joined {
		c.emit(func(h *handlers) {
			if h.onParticipantJoin != nil {
				h.onParticipantJoin(p)
			}
		})
	}
	for _, t := range d.published {
		c.emit(func(h *handlers) {
			if h.onTrackPublished != nil {
				h.onTrackPublished(t)
			}
		})
	}
}

// work applies media signaling events in order until the client closes.
func (c *Client) work() {
	for {
		msg, ok := c.signals.pop(c.ctx.Done())
		if !ok {
			return
		}
		var err error
		switch msg.Type {
		case protocol.TypeSubOffer:
			err = c.handleSubOffer(&msg)
		case protocol.TypeTrickle:
			err = c.handleTrickle(&msg)
		}
		if err != nil && c.ctx.Err() == nil {
			c.log.Warn("media signaling failed", "type", msg.Type, "error", err)
		}
	}
}
