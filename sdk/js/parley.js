// Parley browser SDK: an ES module, no build step. Load it with
//   import { connect } from "/sdk/parley.js";
// It speaks the signaling protocol of docs/protocol.md over WebTransport or
// WebSocket, runs the publisher and subscriber RTCPeerConnections, and
// keeps the session alive (ping, resume after a drop, redirects).

import { WebSocketTransport, WebTransportTransport, webTransportSupported } from "./transport.js";

export { WebSocketTransport, WebTransportTransport, webTransportSupported };

/** The signaling protocol version this SDK speaks. */
export const PROTOCOL_VERSION = 1;

/** An error from the server (code as in docs/protocol.md) or the SDK. */
export class ParleyError extends Error {
  constructor(code, message, data) {
    super(message || code);
    this.name = "ParleyError";
    this.code = code;
    this.data = data;
  }
}

const REQUEST_TIMEOUT_MS = 15000;
const CONNECT_TIMEOUT_MS = 8000;
const MAX_REDIRECTS = 3;
/** The "from" of a data message the server itself sent (server API). */
export const SERVER_SENDER = "server";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new ParleyError("timeout", `${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function isLoopback(host) {
  return host === "localhost" || host === "[::1]" || host === "::1" || /^127\./.test(host);
}

/** Fetches GET /v1/info from a Parley server's HTTP base URL. */
export async function fetchServerInfo(baseUrl) {
  const rsp = await fetch(new URL("/v1/info", baseUrl), { cache: "no-store" });
  if (!rsp.ok) throw new ParleyError("unavailable", `GET /v1/info: HTTP ${rsp.status}`);
  return rsp.json();
}

/** Mints a token from a development server (parley serve --dev). */
export async function fetchDevToken(baseUrl, room, identity) {
  const u = new URL("/v1/dev/token", baseUrl);
  u.searchParams.set("room", room);
  u.searchParams.set("identity", identity);
  const rsp = await fetch(u, { cache: "no-store" });
  const body = await rsp.json().catch(() => ({}));
  if (!rsp.ok) throw new ParleyError("forbidden", body.error || `dev token: HTTP ${rsp.status} (is the server in --dev mode?)`);
  return body.token;
}

/**
 * The WebTransport URL to use from a page at baseUrl: the server names its
 * loopback address when it listens on one or on all addresses; a page
 * loaded from another host uses that host instead.
 */
export function resolveWebTransportUrl(info, baseUrl) {
  if (!info.webtransport_url) return "";
  const u = new URL(info.webtransport_url);
  const base = new URL(baseUrl);
  if (isLoopback(u.hostname) && !isLoopback(base.hostname)) u.hostname = base.hostname;
  return u.toString();
}

/** A minimal event emitter. */
class Emitter {
  constructor() { this._handlers = new Map(); }
  /** Registers handler for event; returns a function that removes it. */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }
  off(event, handler) { this._handlers.get(event)?.delete(handler); }
  emit(event, ...args) {
    for (const h of [...(this._handlers.get(event) || [])]) {
      try { h(...args); } catch (err) { console.error(`parley: ${event} handler failed`, err); }
    }
  }
}

/** Another participant in the room, with the media received from it. */
export class RemoteParticipant {
  constructor(info) {
    this.id = info.id;
    /** @type {Map<string, object>} Parley track id -> TrackInfo */
    this.tracks = new Map();
    /** @type {Map<string, MediaStreamTrack>} Parley track id -> received track */
    this.media = new Map();
    /** All received tracks of this participant, for a <video> element. */
    this.stream = new MediaStream();
    this.update(info);
  }
  update(info) {
    this.identity = info.identity;
    this.name = info.name || "";
    this.metadata = info.metadata || "";
    this.grants = info.grants || {};
    for (const t of info.tracks || []) this.tracks.set(t.id, t);
    /** @type {Set<string>} ids of this participant's tracks the server muted */
    this.mutedTracks = new Set(info.muted_tracks || []);
  }
}

/** A track this client publishes. */
export class LocalTrack {
  constructor(room, track, source) {
    this.room = room;
    this.track = track;
    this.kind = track.kind;
    this.source = source;
    /** The client's id (msid track id); Parley's id follows in parleyId. */
    this.id = track.id;
    this.parleyId = "";
    this.sender = null;
    /** True while the server has muted this track (trackMuted event). */
    this.serverMuted = false;
  }
  get muted() { return !this.track.enabled; }
  /** Sends silence or black frames without renegotiating. */
  mute() { this.track.enabled = false; this.room.emit("localTrackMuted", this); }
  unmute() { this.track.enabled = true; this.room.emit("localTrackUnmuted", this); }
  /** Stops publishing and stops the capture. */
  unpublish() { return this.room.unpublish(this); }
}

/** A joined Parley session. Create it with connect(). */
export class Room extends Emitter {
  constructor(options) {
    super();
    this.options = { transport: "auto", autoSubscribe: true, reconnect: true, leaveOnPageHide: true, ...options };
    this.baseUrl = this.options.url || globalThis.location?.origin;
    this.state = "idle";
    this.transport = null;
    /** @type {Map<string, RemoteParticipant>} */
    this.participants = new Map();
    /** @type {Map<string, LocalTrack>} by client track id */
    this.localTracks = new Map();
    this.localParticipant = null;
    this.session = null;
    this.roomName = "";
    this._nextId = 1;
    this._pending = new Map();
    this._iceServers = [];
    this._pub = null;
    this._sub = null;
    this._pubReady = false;
    this._subReady = false;
    this._localCands = { pub: [], sub: [] };
    this._remoteCands = { pub: [], sub: [] };
    this._pubChain = Promise.resolve();
    this._subChain = Promise.resolve();
    this._orphans = new Map();
    this._localStream = new MediaStream();
    this._redirects = 0;
    this._leaving = false;
    this._connectedWaiters = [];
    if (this.options.leaveOnPageHide && globalThis.addEventListener) {
      this._onPageHide = () => this._leaveNow("page hidden");
      globalThis.addEventListener("pagehide", this._onPageHide);
    }
  }

  // ---- connection ----------------------------------------------------

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    if (state === "connected") this._connectedWaiters.splice(0).forEach((w) => w.resolve());
    if (state === "disconnected") this._connectedWaiters.splice(0).forEach((w) => w.reject(new ParleyError("disconnected", "disconnected")));
    this.emit("connectionState", state);
  }

  _whenConnected() {
    if (this.state === "connected") return Promise.resolve();
    if (this.state === "disconnected") return Promise.reject(new ParleyError("disconnected", "disconnected"));
    return new Promise((resolve, reject) => this._connectedWaiters.push({ resolve, reject }));
  }

  _transportOrder() {
    const t = this.options.transport;
    if (t === "websocket" || t === "webtransport") return [t];
    return webTransportSupported() ? ["webtransport", "websocket"] : ["websocket"];
  }

  async _makeTransport(kind) {
    if (kind === "websocket") {
      let url = this.options.signalUrl;
      if (!url) {
        const u = new URL("/v1/signal", this.baseUrl);
        u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
        url = u.toString();
      }
      return new WebSocketTransport(url);
    }
    let url = this.options.webTransportUrl;
    let hashes = this.options.certHashes;
    if (!url || !hashes) {
      const info = await fetchServerInfo(this.baseUrl);
      url = url || resolveWebTransportUrl(info, this.baseUrl);
      if (!hashes) hashes = info.cert_hash?.pin ? info.cert_hash.hashes : [];
    }
    if (!url) throw new ParleyError("unavailable", "the server does not offer webtransport");
    return new WebTransportTransport(url, hashes);
  }

  /** Opens the first transport that works, in the configured order. */
  async _openTransport() {
    let lastErr;
    for (const kind of this._transportOrder()) {
      let t;
      try {
        t = await this._makeTransport(kind);
        await withTimeout(t.open(), CONNECT_TIMEOUT_MS, `${kind} connect`);
      } catch (err) {
        lastErr = err;
        if (t) t.close("connect failed");
        this.emit("transportError", { kind, error: err });
        continue;
      }
      t.onmessage = (text) => this._onMessage(t, text);
      t.onclose = (info) => this._onTransportClose(t, info);
      this.transport = t;
      return t;
    }
    throw lastErr || new ParleyError("unavailable", "no transport");
  }

  /** Connects and joins with options.token. */
  async _connect() {
    this._setState("connecting");
    for (;;) {
      await this._openTransport();
      try {
        const res = await this._request("join", this._joinData(), { direct: true });
        this._applyJoin(res, false);
        break;
      } catch (err) {
        if (await this._followRedirect(err)) continue;
        this.transport.close("join failed");
        this._setState("disconnected");
        throw err;
      }
    }
    this._setState("connected");
    this._startPing();
  }

  _joinData() {
    const d = { token: this.options.token, auto_subscribe: this.options.autoSubscribe };
    if (this.options.metadata) d.metadata = this.options.metadata;
    return d;
  }

  /** Follows a redirect carried by err (code "redirect" with a url); false otherwise. */
  async _followRedirect(err) {
    const url = err?.data?.url || err?.url;
    if (err?.code !== "redirect" || !url || this._redirects >= MAX_REDIRECTS) return false;
    this._redirects++;
    this._retarget(url);
    this.transport?.close("redirected");
    return true;
  }

  /** Points the session at another server: a ws(s):// or https:// signal URL, or an HTTP base URL. */
  _retarget(url) {
    const u = new URL(url, this.baseUrl);
    if (u.protocol === "ws:" || u.protocol === "wss:") {
      this.options.signalUrl = u.toString();
      this.options.webTransportUrl = "";
      this.options.transport = "websocket";
      return;
    }
    this.baseUrl = u.origin;
    this.options.signalUrl = "";
    this.options.webTransportUrl = u.pathname === "/v1/signal" && u.protocol === "https:" && this.transport?.kind === "webtransport" ? u.toString() : "";
    this.options.certHashes = undefined;
    this.emit("redirect", { url: u.toString() });
  }

  _onTransportClose(t, info) {
    if (t !== this.transport) return;
    this._stopPing();
    for (const [, p] of this._pending) p.reject(new ParleyError("disconnected", `connection closed: ${info.reason || info.code}`));
    this._pending.clear();
    if (this.state === "connecting") return; // _connect reports it
    const fatal = this._closing?.code === "session_expired";
    if (this._leaving || !this.options.reconnect || fatal) {
      this._teardown(this._closing?.reason || info.reason || "connection closed");
      return;
    }
    this._reconnect();
  }

  /** Reconnects and resumes (or rejoins when the session expired). */
  async _reconnect() {
    if (this.state === "reconnecting") return;
    this._setState("reconnecting");
    const grace = this.session?.resume_grace_ms || 15000;
    const deadline = Date.now() + grace + 10000;
    const rejoin = this._closing?.code === "unavailable";
    this._closing = null;
    let delay = 200;
    while (!this._leaving && Date.now() < deadline) {
      try {
        await this._openTransport();
        await this._resumeOrRejoin(rejoin);
        this._setState("connected");
        this._startPing();
        this.emit("reconnected", { transport: this.transport.kind });
        return;
      } catch (err) {
        if (await this._followRedirect(err)) continue;
        this.emit("transportError", { kind: this.transport?.kind, error: err });
        this.transport?.close("reconnect failed");
        await sleep(delay);
        delay = Math.min(delay * 2, 3000);
      }
    }
    this._teardown("could not reconnect");
  }

  async _resumeOrRejoin(rejoin) {
    if (!rejoin && this.session) {
      try {
        const res = await this._request("resume", { session_id: this.session.id, resume_token: this.session.resume_token }, { direct: true });
        this._applyJoin(res, true);
        return;
      } catch (err) {
        if (err.code !== "session_expired") throw err;
      }
    }
    // A new session: fresh peer connections, then publish again.
    this._closePeers();
    const res = await this._request("join", this._joinData(), { direct: true });
    this._applyJoin(res, true);
    const tracks = [...this.localTracks.values()].filter((lt) => lt.track.readyState === "live");
    this.localTracks.clear();
    for (const lt of tracks) this._addToPub(lt);
    if (tracks.length) this._negotiatePub();
  }

  _teardown(reason) {
    if (this.state === "disconnected") return;
    this._stopPing();
    this._closePeers();
    this._setState("disconnected");
    if (this._onPageHide) globalThis.removeEventListener("pagehide", this._onPageHide);
    this.emit("disconnected", { reason });
  }

  _startPing() {
    this._stopPing();
    const every = this.session?.ping_interval_ms || 10000;
    this._pingTimer = setInterval(() => {
      const t = this.transport;
      this._request("ping", undefined, { direct: true, timeout: every * 2 }).catch((err) => {
        if (t === this.transport && err.code === "timeout") t.close("ping timeout");
      });
    }, every);
  }

  _stopPing() { clearInterval(this._pingTimer); }

  // ---- messages ------------------------------------------------------

  /** Sends a request and resolves with the response data. */
  async _request(type, data, { direct = false, timeout = REQUEST_TIMEOUT_MS } = {}) {
    if (!direct) await this._whenConnected();
    const t = this.transport;
    if (!t) throw new ParleyError("disconnected", "not connected");
    const id = String(this._nextId++);
    const msg = { v: PROTOCOL_VERSION, id, type };
    if (data !== undefined) msg.data = data;
    const p = new Promise((resolve, reject) => this._pending.set(id, { resolve, reject }));
    try {
      t.send(JSON.stringify(msg));
    } catch (err) {
      this._pending.delete(id);
      throw new ParleyError("disconnected", err.message);
    }
    return withTimeout(p, timeout, type).finally(() => this._pending.delete(id));
  }

  _onMessage(t, text) {
    if (t !== this.transport) return;
    let m;
    try { m = JSON.parse(text); } catch { return; }
    if (m.ok !== undefined) {
      const p = this._pending.get(m.id);
      if (!p) return;
      if (m.ok) p.resolve(m.data || {});
      else p.reject(new ParleyError(m.error?.code || "internal", m.error?.message, m.error));
      return;
    }
    this._onEvent(m.type, m.data || {});
  }

  _onEvent(type, d) {
    switch (type) {
      case "participant_joined": return this._onParticipantJoined(d);
      case "participant_left": return this._onParticipantLeft(d);
      case "track_published": return this._onTrackPublished(d);
      case "track_unpublished": return this._onTrackUnpublished(d);
      case "sub_offer": return this._onSubOffer(d.offer);
      case "trickle": return this._onRemoteCandidate(d.target, d.candidate);
      case "data": return this.emit("data", { from: d.from, fromIdentity: d.from_identity, to: d.to, fromServer: d.from === SERVER_SENDER, payload: decodePayload(d.payload) });
      case "permissions": return this._onPermissions(d);
      case "track_muted": return this._onTrackMuted(d);
      case "closing":
        this._closing = d;
        return this.emit("closing", d);
      case "redirect":
        if (d.url && this._redirects < MAX_REDIRECTS) {
          this._redirects++;
          this._retarget(d.url);
          this._closing = { code: "unavailable", reason: "redirected" };
          this.transport?.close("redirected");
        }
        return;
      default:
        return this.emit("message", { type, data: d });
    }
  }

  _applyJoin(res, resumed) {
    this.localParticipant = res.participant;
    this.session = res.session;
    this.roomName = res.room?.name || this.roomName;
    this._iceServers = res.ice_servers || [];
    const seen = new Set();
    for (const info of res.room?.participants || []) {
      if (info.id === res.participant.id) continue;
      seen.add(info.id);
      const known = this.participants.get(info.id);
      if (!known) {
        this._onParticipantJoined(info);
        continue;
      }
      const before = new Set(known.tracks.keys());
      known.tracks.clear();
      known.update(info);
      for (const id of before) if (!known.tracks.has(id)) this._dropTrack(known, id);
    }
    for (const [id, p] of this.participants) {
      if (!seen.has(id)) this._onParticipantLeft({ participant_id: id, identity: p.identity, reason: "disconnected" });
    }
    for (const t of res.participant.tracks || []) this._onTrackPublished(t);
    if (!resumed) this.emit("joined", { participant: res.participant, room: res.room });
  }

  /** The server API changed what this participant may do; revocations already took effect. */
  _onPermissions(d) {
    if (this.localParticipant) this.localParticipant.grants = d.grants || {};
    this.emit("permissions", d.grants || {});
  }

  /** The server muted or unmuted a track (no media is forwarded while muted). */
  _onTrackMuted(d) {
    const p = this.participants.get(d.participant_id) || null;
    if (p) {
      if (d.muted) p.mutedTracks.add(d.track_id);
      else p.mutedTracks.delete(d.track_id);
    }
    let localTrack = null;
    for (const lt of this.localTracks.values()) if (lt.parleyId === d.track_id) localTrack = lt;
    if (localTrack) localTrack.serverMuted = !!d.muted;
    this.emit("trackMuted", { trackId: d.track_id, participantId: d.participant_id, muted: !!d.muted, participant: p, localTrack });
  }

  _onParticipantJoined(info) {
    if (info.id === this.localParticipant?.id) return;
    let p = this.participants.get(info.id);
    if (p) return p.update(info);
    p = new RemoteParticipant(info);
    this.participants.set(p.id, p);
    this.emit("participantJoined", p);
    for (const o of this._orphans.get(p.id) || []) this._attachMedia(p, o.trackId, o.track);
    this._orphans.delete(p.id);
  }

  _onParticipantLeft(d) {
    const p = this.participants.get(d.participant_id);
    if (!p) return;
    for (const id of [...p.media.keys()]) this._dropTrack(p, id);
    this.participants.delete(p.id);
    this.emit("participantLeft", p, d.reason);
  }

  _onTrackPublished(t) {
    if (t.participant_id === this.localParticipant?.id) {
      const lt = this.localTracks.get(t.client_track_id);
      if (lt) {
        lt.parleyId = t.id;
        this.emit("localTrackPublished", lt);
      }
      return;
    }
    const p = this.participants.get(t.participant_id);
    if (!p) return;
    p.tracks.set(t.id, t);
    this.emit("trackPublished", t, p);
  }

  _onTrackUnpublished(d) {
    const p = this.participants.get(d.participant_id);
    if (!p) return;
    const info = p.tracks.get(d.track_id);
    p.tracks.delete(d.track_id);
    this._dropTrack(p, d.track_id);
    this.emit("trackUnpublished", info || { id: d.track_id, participant_id: d.participant_id }, p);
  }

  _dropTrack(p, trackId) {
    const track = p.media.get(trackId);
    if (!track) return;
    p.media.delete(trackId);
    p.stream.removeTrack(track);
    this.emit("trackRemoved", { track, trackId, participant: p, stream: p.stream });
  }

  // ---- media -----------------------------------------------------------

  _newPeer(target) {
    const pc = new RTCPeerConnection({ iceServers: this.options.iceServers || this._iceServers, bundlePolicy: "max-bundle" });
    pc.onicecandidate = (ev) => {
      if (!ev.candidate || !ev.candidate.candidate) return;
      const c = ev.candidate.toJSON();
      if ((target === "pub" ? this._pubReady : this._subReady)) this._sendCandidate(target, c);
      else this._localCands[target].push(c);
    };
    pc.onconnectionstatechange = () => this.emit("peerState", { target, state: pc.connectionState });
    return pc;
  }

  _sendCandidate(target, candidate) {
    this._request("trickle", { target, candidate }).catch(() => {});
  }

  _flushLocal(target) {
    for (const c of this._localCands[target].splice(0)) this._sendCandidate(target, c);
  }

  async _flushRemote(target, pc) {
    for (const c of this._remoteCands[target].splice(0)) await pc.addIceCandidate(c).catch(() => {});
  }

  _onRemoteCandidate(target, candidate) {
    if (!candidate || !candidate.candidate) return;
    const pc = target === "pub" ? this._pub : this._sub;
    if (!pc || !pc.remoteDescription) {
      this._remoteCands[target]?.push(candidate);
      return;
    }
    pc.addIceCandidate(candidate).catch((err) => this.emit("warning", `add ${target} candidate: ${err.message}`));
  }

  _closePeers() {
    for (const pc of [this._pub, this._sub]) if (pc) pc.close();
    this._pub = this._sub = null;
    this._pubReady = this._subReady = false;
    this._localCands = { pub: [], sub: [] };
    this._remoteCands = { pub: [], sub: [] };
  }

  _onSubOffer(offer) {
    this._subChain = this._subChain.then(() => this._answerSub(offer)).catch((err) => {
      this.emit("warning", `subscriber negotiation failed: ${err.message}`);
    });
  }

  async _answerSub(offer) {
    if (!this._sub) {
      this._sub = this._newPeer("sub");
      this._sub.ontrack = (ev) => this._onRemoteTrack(this._sub, ev);
    }
    const pc = this._sub;
    await pc.setRemoteDescription(offer);
    await this._flushRemote("sub", pc);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    const sent = this._request("sub_answer", { answer: { type: "answer", sdp: pc.localDescription.sdp } });
    this._subReady = true;
    this._flushLocal("sub");
    await sent;
  }

  _onRemoteTrack(pc, ev) {
    const trackId = msidTrackId(pc.remoteDescription?.sdp, ev.transceiver?.mid) || ev.track.id;
    const pid = ev.streams[0]?.id;
    const p = this.participants.get(pid) || [...this.participants.values()].find((x) => x.tracks.has(trackId));
    if (!p) {
      if (!this._orphans.has(pid)) this._orphans.set(pid, []);
      this._orphans.get(pid).push({ trackId, track: ev.track });
      return;
    }
    this._attachMedia(p, trackId, ev.track);
  }

  _attachMedia(p, trackId, track) {
    const old = p.media.get(trackId);
    if (old === track) return;
    if (old) p.stream.removeTrack(old);
    p.media.set(trackId, track);
    p.stream.addTrack(track);
    this.emit("track", { track, trackId, info: p.tracks.get(trackId), participant: p, stream: p.stream });
  }

  _addToPub(lt) {
    if (!this._pub) this._pub = this._newPeer("pub");
    const tr = this._pub.addTransceiver(lt.track, { direction: "sendonly", streams: [this._localStream] });
    lt.sender = tr.sender;
    this.localTracks.set(lt.id, lt);
  }

  /** Renegotiates the publisher connection; calls are serialized. */
  _negotiatePub() {
    const run = this._pubChain.then(() => this._offerPub());
    this._pubChain = run.catch(() => {});
    return run;
  }

  async _offerPub(attempt = 0) {
    const pc = this._pub;
    if (!pc) return;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    let res;
    try {
      res = await this._request("publish", { offer: { type: "offer", sdp: pc.localDescription.sdp } });
    } catch (err) {
      if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
      if (err.code === "disconnected" && attempt < 3 && pc === this._pub) return this._offerPub(attempt + 1);
      throw err;
    }
    if (pc !== this._pub) return;
    await pc.setRemoteDescription(res.answer);
    await this._flushRemote("pub", pc);
    this._pubReady = true;
    this._flushLocal("pub");
  }

  /**
   * Publishes a MediaStreamTrack. Resolves once the server accepted it;
   * the Parley id follows (localTrackPublished) when media flows.
   */
  async publishTrack(track, { source = track.kind } = {}) {
    const lt = new LocalTrack(this, track, source);
    this._addToPub(lt);
    try {
      await this._negotiatePub();
    } catch (err) {
      this._removeFromPub(lt);
      throw err;
    }
    this.emit("localTrack", lt);
    return lt;
  }

  /** Captures and publishes the camera. */
  async publishCamera(constraints = true) {
    const s = await navigator.mediaDevices.getUserMedia({ video: constraints });
    return this.publishTrack(s.getVideoTracks()[0], { source: "camera" });
  }

  /** Captures and publishes the microphone. */
  async publishMicrophone(constraints = true) {
    const s = await navigator.mediaDevices.getUserMedia({ audio: constraints });
    return this.publishTrack(s.getAudioTracks()[0], { source: "microphone" });
  }

  /** Captures and publishes the screen; it is unpublished when the user stops sharing. */
  async publishScreen(constraints = true) {
    const s = await navigator.mediaDevices.getDisplayMedia({ video: constraints, audio: false });
    const track = s.getVideoTracks()[0];
    const lt = await this.publishTrack(track, { source: "screen" });
    track.addEventListener("ended", () => this.unpublish(lt).catch(() => {}));
    return lt;
  }

  _removeFromPub(lt) {
    this.localTracks.delete(lt.id);
    if (this._pub && lt.sender && this._pub.signalingState !== "closed") {
      try { this._pub.removeTrack(lt.sender); } catch { /* already removed */ }
    }
  }

  /** Stops publishing a local track and stops its capture. */
  async unpublish(lt) {
    if (!this.localTracks.has(lt.id)) return;
    const req = this._request("unpublish", { track_id: lt.parleyId || lt.id }).catch((err) => {
      if (err.code !== "not_found") throw err;
    });
    this._removeFromPub(lt);
    lt.track.stop();
    await req;
    await this._negotiatePub();
    this.emit("localTrackUnpublished", lt);
  }

  /** Enables or disables (mutes) every published track of a source. */
  setSourceEnabled(source, enabled) {
    for (const lt of this.localTracks.values()) {
      if (lt.source === source) (enabled ? lt.unmute() : lt.mute());
    }
  }

  // ---- other requests --------------------------------------------------

  /** Sends a JSON payload to the room, or to one participant (id). */
  sendData(payload, { to } = {}) {
    const d = { payload };
    if (to) d.to = to;
    return this._request("data", d);
  }

  /** Subscribes to tracks by Parley id (needed with autoSubscribe: false). */
  subscribe(trackIds) { return this._request("subscribe", { track_ids: trackIds }); }

  /** Unsubscribes from tracks by Parley id. */
  unsubscribe(trackIds) { return this._request("unsubscribe", { track_ids: trackIds }); }

  /** Round-trips a ping; resolves with the server's clock (Unix ms). */
  async ping() { return (await this._request("ping")).server_time_ms; }

  /** Leaves the room and closes everything. */
  async leave() {
    if (this._leaving) return;
    this._leaving = true;
    if (this.state === "connected") await this._request("leave", undefined, { timeout: 3000 }).catch(() => {});
    for (const lt of this.localTracks.values()) lt.track.stop();
    this.transport?.close("leave");
    this._teardown("leave");
  }

  /** Best effort during page unload: send leave without waiting. */
  _leaveNow(reason) {
    if (this._leaving || !this.transport) return;
    this._leaving = true;
    try { this.transport.send(JSON.stringify({ v: PROTOCOL_VERSION, id: String(this._nextId++), type: "leave" })); } catch { /* closing */ }
    this.transport.close(reason);
  }
}

/** The msid track id of the m-section with mid, or "". */
export function msidTrackId(sdp, mid) {
  if (!sdp || mid == null) return "";
  for (const section of sdp.split(/\r?\n(?=m=)/)) {
    const m = section.match(/^a=mid:(\S+)/m);
    if (!m || m[1] !== String(mid)) continue;
    const msid = section.match(/^a=msid:(\S+) (\S+)/m);
    return msid ? msid[2] : "";
  }
  return "";
}

/**
 * Data payloads are JSON values. Servers up to this version send them as
 * base64 of the JSON text; decode that when it parses, else pass through.
 */
export function decodePayload(payload) {
  if (typeof payload !== "string") return payload;
  try {
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))));
  } catch {
    return payload;
  }
}

/**
 * Connects to a Parley server and joins a room.
 * @param {object} options see parley.d.ts (ConnectOptions)
 * @returns {Promise<Room>}
 */
export async function connect(options) {
  if (!options?.token) throw new ParleyError("bad_request", "connect: token is required");
  const room = new Room(options);
  await room._connect();
  return room;
}
