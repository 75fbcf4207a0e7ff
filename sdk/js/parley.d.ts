// Type declarations for the Parley browser SDK (parley.js). The protocol
// they describe is docs/protocol.md.

/** The signaling protocol version the SDK speaks. */
export const PROTOCOL_VERSION: 1;

/** The `from` of a data message sent by the server (its API), not a participant. */
export const SERVER_SENDER: "server";

/** Error codes from docs/protocol.md, plus the SDK's own. */
export type ErrorCode =
  | "malformed_message" | "unsupported_version" | "unknown_type" | "bad_request"
  | "message_too_large" | "unauthenticated" | "invalid_token" | "token_expired"
  | "forbidden" | "not_found" | "conflict" | "room_full" | "too_many_tracks"
  | "rate_limited" | "invalid_sdp" | "session_expired" | "unavailable" | "internal"
  | "redirect" | "timeout" | "disconnected" | (string & {});

/** A failed request or an SDK failure. */
export class ParleyError extends Error {
  constructor(code: ErrorCode, message?: string, data?: unknown);
  code: ErrorCode;
  data?: unknown;
}

export interface Grants {
  can_publish?: boolean;
  can_subscribe?: boolean;
  can_publish_data?: boolean;
}

export interface TrackInfo {
  id: string;
  client_track_id: string;
  participant_id: string;
  identity: string;
  kind: "audio" | "video";
  mime_type?: string;
  stream_id?: string;
}

export interface ParticipantInfo {
  id: string;
  identity: string;
  name?: string;
  metadata?: string;
  grants: Grants;
  tracks: TrackInfo[];
  /** Ids of the tracks the server muted; absent when none is. */
  muted_tracks?: string[];
}

export interface SessionInfo {
  id: string;
  resume_token: string;
  resume_grace_ms: number;
  ping_interval_ms: number;
}

export interface CertHash {
  algorithm: "sha-256";
  hex: string;
  base64: string;
  not_before: string;
  not_after: string;
}

/** GET /v1/cert-hash, and cert_hash in /v1/info. */
export interface CertInfo extends CertHash {
  pin: boolean;
  self_signed: boolean;
  hashes: CertHash[];
}

/** GET /v1/info. */
export interface ServerInfo {
  name: string;
  version: string;
  node_id: string;
  features: string[];
  signal_url: string;
  webtransport_url?: string;
  cert_hash?: CertInfo;
  dev: boolean;
  [key: string]: unknown;
}

export type TransportKind = "websocket" | "webtransport";

export interface ConnectOptions {
  /** Token from a site backend, `parley token`, or fetchDevToken. */
  token: string;
  /** HTTP base URL of the server; default: the page's origin. */
  url?: string;
  /** "auto" (default) tries WebTransport first and falls back to WebSocket. */
  transport?: "auto" | TransportKind;
  /** Override the WebSocket signaling URL (ws:// or wss://). */
  signalUrl?: string;
  /** Override the WebTransport URL (https://host:port/v1/signal). */
  webTransportUrl?: string;
  /** Pinned certificate hashes; default: from /v1/info when the server says pin. */
  certHashes?: Array<{ base64: string }>;
  /** Subscribe to every track as it is published (default true). */
  autoSubscribe?: boolean;
  metadata?: string;
  /** Reconnect and resume after a dropped connection (default true). */
  reconnect?: boolean;
  /** Send leave when the page is hidden for good (default true). */
  leaveOnPageHide?: boolean;
  /** Replace the ICE servers the server hands out. */
  iceServers?: RTCIceServer[];
}

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "disconnected";

/** Another participant and the media received from it. */
export class RemoteParticipant {
  readonly id: string;
  identity: string;
  name: string;
  metadata: string;
  grants: Grants;
  /** Published tracks by Parley track id. */
  readonly tracks: Map<string, TrackInfo>;
  /** Received tracks by Parley track id. */
  readonly media: Map<string, MediaStreamTrack>;
  /** Every received track of this participant, for a media element. */
  readonly stream: MediaStream;
  /** Ids of this participant's tracks the server muted (no media flows). */
  readonly mutedTracks: Set<string>;
}

/** A track this client publishes. */
export class LocalTrack {
  readonly track: MediaStreamTrack;
  readonly kind: "audio" | "video";
  readonly source: "camera" | "microphone" | "screen" | string;
  /** The client's (msid) track id. */
  readonly id: string;
  /** Parley's track id, once the server reported it ("" before). */
  parleyId: string;
  readonly muted: boolean;
  /** True while the server has muted the track: nothing is forwarded. */
  readonly serverMuted: boolean;
  mute(): void;
  unmute(): void;
  unpublish(): Promise<void>;
}

export interface RemoteTrackEvent {
  track: MediaStreamTrack;
  trackId: string;
  info?: TrackInfo;
  participant: RemoteParticipant;
  stream: MediaStream;
}

export interface DataMessage {
  /** Sender's participant id, or SERVER_SENDER ("server"). */
  from: string;
  fromIdentity: string;
  to?: string;
  /** True when the server (its API) sent the message. */
  fromServer: boolean;
  payload: unknown;
}

/**
 * Why the server is closing the connection. With code "session_expired" the
 * participant was removed and `reason` says why: "kicked", "room_closed" or
 * "replaced"; `detail` carries the operator's words. With "redirect" join
 * again at `url` (empty: where you first connected); with "unavailable" the
 * server is going away.
 */
export interface ClosingEvent {
  reason: string;
  code?: ErrorCode;
  url?: string;
  detail?: string;
}

export interface TrackMutedEvent {
  trackId: string;
  participantId: string;
  muted: boolean;
  /** The publisher, or null when it is this client. */
  participant: RemoteParticipant | null;
  /** This client's track, when it is the one muted. */
  localTrack: LocalTrack | null;
}

export interface RoomEvents {
  joined: (e: { participant: ParticipantInfo; room: { name: string; participants: ParticipantInfo[] } }) => void;
  connectionState: (state: ConnectionState) => void;
  reconnected: (e: { transport: TransportKind }) => void;
  disconnected: (e: { reason: string }) => void;
  closing: (e: ClosingEvent) => void;
  /** The server API changed this participant's grants; revocations already took effect. */
  permissions: (grants: Grants) => void;
  /** The server muted or unmuted a track, this client's own included. */
  trackMuted: (e: TrackMutedEvent) => void;
  redirect: (e: { url: string }) => void;
  transportError: (e: { kind?: TransportKind; error: Error }) => void;
  participantJoined: (p: RemoteParticipant) => void;
  participantLeft: (p: RemoteParticipant, reason: string) => void;
  trackPublished: (t: TrackInfo, p: RemoteParticipant) => void;
  trackUnpublished: (t: TrackInfo, p: RemoteParticipant) => void;
  track: (e: RemoteTrackEvent) => void;
  trackRemoved: (e: RemoteTrackEvent) => void;
  localTrack: (t: LocalTrack) => void;
  localTrackPublished: (t: LocalTrack) => void;
  localTrackUnpublished: (t: LocalTrack) => void;
  localTrackMuted: (t: LocalTrack) => void;
  localTrackUnmuted: (t: LocalTrack) => void;
  data: (m: DataMessage) => void;
  peerState: (e: { target: "pub" | "sub"; state: RTCPeerConnectionState }) => void;
  warning: (message: string) => void;
  message: (m: { type: string; data: unknown }) => void;
}

/** A joined session; create it with connect(). */
export class Room {
  readonly options: ConnectOptions;
  readonly state: ConnectionState;
  readonly roomName: string;
  readonly transport: { kind: TransportKind; url: string } | null;
  readonly localParticipant: ParticipantInfo | null;
  readonly session: SessionInfo | null;
  readonly participants: Map<string, RemoteParticipant>;
  readonly localTracks: Map<string, LocalTrack>;

  on<E extends keyof RoomEvents>(event: E, handler: RoomEvents[E]): () => void;
  off<E extends keyof RoomEvents>(event: E, handler: RoomEvents[E]): void;

  publishTrack(track: MediaStreamTrack, opts?: { source?: string }): Promise<LocalTrack>;
  publishCamera(constraints?: boolean | MediaTrackConstraints): Promise<LocalTrack>;
  publishMicrophone(constraints?: boolean | MediaTrackConstraints): Promise<LocalTrack>;
  publishScreen(constraints?: boolean | MediaTrackConstraints): Promise<LocalTrack>;
  unpublish(track: LocalTrack): Promise<void>;
  setSourceEnabled(source: string, enabled: boolean): void;
  sendData(payload: unknown, opts?: { to?: string }): Promise<void>;
  subscribe(trackIds: string[]): Promise<void>;
  unsubscribe(trackIds: string[]): Promise<void>;
  ping(): Promise<number>;
  leave(): Promise<void>;
}

/** Connects to a server and joins the room named by the token. */
export function connect(options: ConnectOptions): Promise<Room>;
export function fetchServerInfo(baseUrl: string): Promise<ServerInfo>;
/** Mints a token from a server in development mode (GET /v1/dev/token). */
export function fetchDevToken(baseUrl: string, room: string, identity: string): Promise<string>;
export function resolveWebTransportUrl(info: ServerInfo, baseUrl: string): string;
export function webTransportSupported(): boolean;
export function msidTrackId(sdp: string | undefined, mid: string | null | undefined): string;
export function decodePayload(payload: unknown): unknown;

/** Signaling transports, for custom set-ups. */
export class WebSocketTransport {
  constructor(url: string);
  readonly kind: "websocket";
  readonly url: string;
  open(): Promise<void>;
  send(text: string): void;
  close(reason?: string): void;
  onmessage: ((text: string) => void) | null;
  onclose: ((e: { code: number; reason: string; clean: boolean }) => void) | null;
}

export class WebTransportTransport {
  constructor(url: string, certHashes?: Array<{ base64: string }>);
  readonly kind: "webtransport";
  readonly url: string;
  open(): Promise<void>;
  send(text: string): void;
  close(reason?: string): void;
  onmessage: ((text: string) => void) | null;
  onclose: ((e: { code: number; reason: string; clean: boolean }) => void) | null;
}
