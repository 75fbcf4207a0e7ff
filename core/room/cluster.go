package room

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/parleyhq/parley/core"
)

// Room placement in a cluster (Deps.Cluster). A room is claimed through the
// cluster state when it is created on this node, before its first
// participant is admitted; a room another node owns is answered with a
// redirect to that node. When the room empties, its claim is released in
// the background, and a new claim of the same name on this node waits for
// that release, so a late release never drops a newer claim. When the
// cluster takes a claim away (the leader declared this node failed, or the
// node drains), Evict moves the room's participants elsewhere.

// releaseTimeout bounds the release of an emptied room's claim.
const releaseTimeout = 5 * time.Second

// releaseAttempts is how often a failing release is tried.
const releaseAttempts = 3

// claim places r on this node, once per Room; every joiner of r waits for
// the outcome. metadata goes with the claim if this call makes it.
// Without a cluster it does nothing.
func (m *Manager) claim(ctx context.Context, r *Room, metadata string) error {
	if m.deps.Cluster == nil {
		return nil
	}
	r.claimOnce.Do(func() {
		r.claimErr = m.claimNow(ctx, r, metadata)
		r.claimed.Store(true)
	})
	return r.claimErr
}

func (m *Manager) claimNow(ctx context.Context, r *Room, metadata string) error {
	cs := m.deps.Cluster
	if r.prior != nil {
		select {
		case <-r.prior:
		case <-ctx.Done():
			return core.Errorf(core.CodeUnavailable, "room %q is being released: %w", r.name, ctx.Err())
		}
	}
	if m.Draining() {
		// Take no room, not even one this node still owns while its
		// release is on the way: send the client where the room goes.
		if c, ok := cs.Room(r.name); ok && !c.OwnedBy(cs.LocalNode()) {
			return m.redirectTo(c, r.name)
		}
		return m.redirectElsewhere(r.name)
	}
	c, err := cs.ClaimRoom(ctx, r.name, metadata)
	if err != nil {
		if m.Draining() {
			return m.redirectElsewhere(r.name)
		}
		return &core.Error{Code: core.CodeOf(err), Message: "cannot place room " + r.name + " in the cluster", Err: err}
	}
	if !c.OwnedBy(cs.LocalNode()) {
		return m.redirectTo(c, r.name)
	}
	r.epoch = c.Epoch
	m.deps.Log.Debug("room claimed", "room", r.name, "epoch", c.Epoch)
	return nil
}

// redirectTo sends the client to the owner of claim c.
func (m *Manager) redirectTo(c core.RoomClaim, room string) error {
	url := c.OwnerURL
	if n, ok := m.deps.Cluster.Node(c.Owner); ok && n.PublicURL != "" {
		url = n.PublicURL
	}
	if url == "" {
		return core.Errorf(core.CodeUnavailable, "room %q is hosted by node %s, whose address is unknown", room, c.Owner)
	}
	return core.Redirect(url, room)
}

// redirectElsewhere sends the client of a draining node to another node.
func (m *Manager) redirectElsewhere(room string) error {
	if url := m.Elsewhere(room); url != "" {
		return core.Redirect(url, room)
	}
	return core.Errorf(core.CodeUnavailable, "this node is draining and no other node takes room %q", room)
}

// releaseLocked starts releasing the claim of r, which was just removed
// from the manager. m.mu held.
func (m *Manager) releaseLocked(r *Room) {
	if m.deps.Cluster == nil || r.epoch == 0 || r.lost.Load() {
		return
	}
	done := make(chan struct{})
	m.releasing[r.name] = done
	m.releases.Add(1)
	go func() {
		defer m.releases.Done()
		defer close(done)
		m.releaseClaim(r)
		m.mu.Lock()
		if m.releasing[r.name] == done {
			delete(m.releasing, r.name)
		}
		m.mu.Unlock()
	}()
}

// releaseClaim releases r's claim, trying up to releaseAttempts times: a
// claim left behind keeps the room listed and its room_finished unsent
// until the node dies. Joiners of the same name wait meanwhile (they wait
// on the release), so a late release never drops a newer claim.
func (m *Manager) releaseClaim(r *Room) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		err := m.deps.Cluster.ReleaseRoom(ctx, r.name, r.epoch)
		cancel()
		if err == nil || core.CodeOf(err) == core.CodeConflict {
			return
		}
		if attempt == releaseAttempts || m.isClosed() {
			// The claim stays with this node: a later join here takes it
			// up again, and the leader releases it if the node dies.
			m.deps.Log.Warn("releasing room claim failed", "room", r.name, "epoch", r.epoch, "attempts", attempt, "err", err)
			return
		}
		m.deps.Log.Info("releasing room claim failed; retrying", "room", r.name, "epoch", r.epoch, "err", err)
		time.Sleep(backoff)
		backoff *= 4
	}
}

// isClosed reports whether Close has begun.
func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Evict moves every participant of room elsewhere because the cluster no
// longer places the room on this node: each gets a closing event with code
// redirect and url (empty: the client reconnects where it first did) and
// leaves with ReasonMoved. epoch names the claim that was lost; a room
// claimed afresh since (another epoch) is left alone, and 0 matches any.
// It returns how many participants were moved.
func (m *Manager) Evict(room string, epoch uint64, url string) int {
	m.mu.Lock()
	r := m.rooms[room]
	if r == nil || !r.claimSettled() || (epoch != 0 && r.epoch != epoch) {
		m.mu.Unlock()
		return 0
	}
	r.lost.Store(true)
	m.detachLocked(r, FinishMoved)
	m.mu.Unlock()
	r.flushPresence()
	ps := r.all()
	for _, p := range ps {
		p.moveTo(url)
	}
	if len(ps) > 0 {
		m.deps.Log.Info("room moved off this node", "room", room, "epoch", epoch, "participants", len(ps), "to", url)
	}
	return len(ps)
}

// Drain stops this node from taking rooms and hands over the ones it has:
// each room's claim is released, then its participants are sent to the
// node Elsewhere picks (where they claim the room afresh). It returns how
// many participants were moved. Joins that arrive later are redirected.
//
// Without a cluster there is nowhere else to go: every room finishes
// (reason "moved"), each participant's client gets closing with code
// redirect and no url, which means join again where it first connected
// (so it comes back once the node restarts), and joins and CreateRoom
// are refused with code unavailable meanwhile.
func (m *Manager) Drain(ctx context.Context) int {
	m.draining.Store(true)
	m.mu.Lock()
	var rooms []*Room
	for _, r := range m.rooms {
		if m.deps.Cluster == nil || r.claimSettled() {
			rooms = append(rooms, r)
			r.lost.Store(true)
			m.detachLocked(r, FinishMoved)
		}
	}
	m.mu.Unlock()
	moved := 0
	for _, r := range rooms {
		r.flushPresence()
		if m.deps.Cluster != nil && r.epoch != 0 {
			if err := m.deps.Cluster.ReleaseRoom(ctx, r.name, r.epoch); err != nil {
				m.deps.Log.Warn("drain: releasing room failed", "room", r.name, "err", err)
			}
		}
		url := m.Elsewhere(r.name)
		for _, p := range r.all() {
			p.moveTo(url)
			moved++
		}
	}
	return moved
}

// Draining reports whether Drain was called.
func (m *Manager) Draining() bool { return m.draining.Load() }

// AlternateURLs returns the public URLs of the cluster's other nodes that
// take rooms, ordered by node id; nil without a cluster that lists nodes.
func (m *Manager) AlternateURLs() []string {
	cn, ok := m.deps.Cluster.(core.ClusterNodes)
	if !ok {
		return nil
	}
	var out []string
	for _, n := range cn.Nodes() {
		if n.ID != m.deps.Cluster.LocalNode() && !n.Draining && !n.Down && n.PublicURL != "" {
			out = append(out, n.PublicURL)
		}
	}
	return out
}

// Elsewhere picks the node a room goes to when it leaves this one: one of
// AlternateURLs, the same for every participant of the room. "" when there
// is none.
func (m *Manager) Elsewhere(room string) string {
	urls := m.AlternateURLs()
	if len(urls) == 0 {
		return ""
	}
	h := fnv.New32a()
	h.Write([]byte(room))
	return urls[h.Sum32()%uint32(len(urls))]
}

// closeWait bounds how long Close waits for claim releases: a node cut
// off from its cluster cannot release, and the leader's failure handling
// (or the node's next start) releases its rooms instead.
const closeWait = 2 * time.Second

// waitReleases waits a little for the claim releases in flight.
func (m *Manager) waitReleases() {
	done := make(chan struct{})
	go func() {
		m.releases.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		m.deps.Log.Warn("room claims not released before shutdown")
	}
}

// ClaimedRooms returns the epoch of the cluster claim of every room on this
// node that holds one, by room name.
func (m *Manager) ClaimedRooms() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.rooms))
	for name, r := range m.rooms {
		if r.claimSettled() && r.epoch != 0 {
			out[name] = r.epoch
		}
	}
	return out
}
