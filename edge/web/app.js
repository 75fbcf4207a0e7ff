// Parley demo page: join a room, see everyone, talk, chat. Uses only the
// browser SDK served at /sdk/parley.js.
import { connect, fetchDevToken, fetchServerInfo } from "/sdk/parley.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let info = null;
let room = null;
let localStream = new MediaStream();
let screenTrack = null;
const tiles = new Map(); // participant id (or "local") -> tile element

function setState(state) {
  const el = $("state-label");
  el.textContent = state === "connected" ? "connected" : state;
  el.className = `pill state ${state}`;
}

function systemMessage(text) {
  const li = document.createElement("li");
  li.className = "system";
  li.textContent = text;
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}

function chatMessage(who, text) {
  const li = document.createElement("li");
  const w = document.createElement("span");
  w.className = "who";
  w.textContent = who;
  li.append(w, document.createTextNode(text));
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}

function initials(name) {
  return (name || "?").split(/\s+/).map((s) => s[0]).join("").slice(0, 2).toUpperCase();
}

function makeTile(key, label, stream, local) {
  const node = $("tile-template").content.firstElementChild.cloneNode(true);
  node.dataset.key = key;
  node.classList.add(local ? "local" : "remote", "novideo");
  node.querySelector(".name").textContent = label;
  node.querySelector(".placeholder").textContent = initials(label);
  const video = node.querySelector("video");
  video.muted = local;
  video.srcObject = stream;
  video.addEventListener("resize", () => refreshTile(key));
  $("grid").append(node);
  tiles.set(key, node);
  refreshTile(key);
  return node;
}

function refreshTile(key) {
  const node = tiles.get(key);
  if (!node) return;
  const video = node.querySelector("video");
  const stream = video.srcObject;
  const vt = stream?.getVideoTracks().find((t) => t.readyState === "live");
  const hasVideo = !!vt && (key === "local" ? vt.enabled : !vt.muted) && video.videoWidth > 0;
  node.classList.toggle("novideo", !hasVideo);
  if (video.paused && stream?.getTracks().length) video.play().catch(() => {});
}

function removeTile(key) {
  tiles.get(key)?.remove();
  tiles.delete(key);
}

function setFlags(key, text) {
  const node = tiles.get(key);
  if (node) node.querySelector(".flags").textContent = text;
}

function updateLocalFlags() {
  const mic = [...room.localTracks.values()].find((t) => t.source === "microphone");
  const cam = [...room.localTracks.values()].find((t) => t.source === "camera");
  const flags = [];
  if (!mic || mic.muted) flags.push("mic off");
  if (!cam || cam.muted) flags.push("camera off");
  setFlags("local", flags.join(" · "));
  $("mic-btn").textContent = mic && !mic.muted ? "Mic on" : "Mic off";
  $("mic-btn").className = `toggle ${mic && !mic.muted ? "on" : "off"}`;
  $("cam-btn").textContent = cam && !cam.muted ? "Camera on" : "Camera off";
  $("cam-btn").className = `toggle ${cam && !cam.muted ? "on" : "off"}`;
  $("screen-btn").textContent = screenTrack ? "Stop sharing" : "Share screen";
  $("screen-btn").className = `toggle ${screenTrack ? "on" : ""}`;
  refreshTile("local");
}

function wireRoom(r, name) {
  r.on("connectionState", (s) => {
    setState(s);
    if (s === "reconnecting") systemMessage("Connection lost; reconnecting…");
  });
  r.on("reconnected", (e) => {
    systemMessage(`Reconnected over ${e.transport}.`);
    $("transport-label").textContent = e.transport;
  });
  r.on("disconnected", (e) => {
    systemMessage(`Disconnected: ${e.reason}.`);
    if (e.reason !== "leave") showLobby(`Disconnected: ${e.reason}`);
  });
  r.on("participantJoined", (p) => {
    makeTile(p.id, p.identity, p.stream, false);
    systemMessage(`${p.identity} joined.`);
  });
  r.on("participantLeft", (p, reason) => {
    removeTile(p.id);
    systemMessage(`${p.identity} left (${reason}).`);
  });
  r.on("track", (e) => {
    const key = e.participant.id;
    if (!tiles.has(key)) makeTile(key, e.participant.identity, e.participant.stream, false);
    e.track.addEventListener("mute", () => refreshTile(key));
    e.track.addEventListener("unmute", () => refreshTile(key));
    refreshTile(key);
  });
  r.on("trackRemoved", (e) => refreshTile(e.participant.id));
  r.on("data", (m) => {
    if (m.payload && typeof m.payload === "object" && typeof m.payload.text === "string") {
      chatMessage(m.fromIdentity, m.payload.text);
    }
  });
  r.on("warning", (w) => console.warn("parley:", w));
  for (const p of r.participants.values()) makeTile(p.id, p.identity, p.stream, false);
  makeTile("local", `${name} (you)`, localStream, true);
}

async function publishLocal(camera, mic) {
  const jobs = [];
  if (mic) jobs.push(room.publishMicrophone().then((lt) => localStream.addTrack(lt.track)));
  if (camera) jobs.push(room.publishCamera({ width: 640, height: 480 }).then((lt) => localStream.addTrack(lt.track)));
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === "rejected") systemMessage(`Could not publish: ${r.reason?.message || r.reason}`);
  updateLocalFlags();
}

async function join(ev) {
  ev?.preventDefault();
  const roomName = $("room").value.trim();
  const name = $("name").value.trim();
  if (!roomName || !name) return;
  $("join-btn").disabled = true;
  $("lobby-error").textContent = "";
  setState("connecting");
  try {
    localStorage.setItem("parley.name", name);
    const token = info?.dev ? await fetchDevToken(location.origin, roomName, name) : $("token").value.trim();
    if (!token) throw new Error("a token is required (the server is not in --dev mode)");
    room = await connect({ token, transport: $("transport").value });
    window.parleyDemo.room = room;
    $("room-label").textContent = `room ${room.roomName}`;
    $("transport-label").textContent = room.transport.kind;
    for (const id of ["room-label", "transport-label"]) $(id).classList.remove("hidden");
    showCall();
    wireRoom(room, name);
    setState(room.state);
    systemMessage(`Joined ${room.roomName} as ${name} over ${room.transport.kind}.`);
    await publishLocal($("with-camera").checked, $("with-mic").checked);
  } catch (err) {
    console.warn("parley: join failed", err);
    showLobby(`Could not join: ${err.message || err}`);
  } finally {
    $("join-btn").disabled = false;
  }
}

function showCall() {
  $("lobby").classList.add("hidden");
  $("call").classList.remove("hidden");
  $("controls").classList.remove("hidden");
}

function showLobby(error = "") {
  for (const key of [...tiles.keys()]) removeTile(key);
  for (const t of localStream.getTracks()) t.stop();
  localStream = new MediaStream();
  screenTrack = null;
  $("messages").replaceChildren();
  $("call").classList.add("hidden");
  $("controls").classList.add("hidden");
  $("lobby").classList.remove("hidden");
  for (const id of ["room-label", "transport-label"]) $(id).classList.add("hidden");
  $("lobby-error").textContent = error;
  setState(error ? "disconnected" : "not connected");
}

function toggleSource(source) {
  const lt = [...room.localTracks.values()].find((t) => t.source === source);
  if (!lt) {
    const publish = source === "camera" ? room.publishCamera() : room.publishMicrophone();
    publish.then((t) => { localStream.addTrack(t.track); updateLocalFlags(); })
      .catch((err) => systemMessage(`Could not publish ${source}: ${err.message}`));
    return;
  }
  lt.muted ? lt.unmute() : lt.mute();
  updateLocalFlags();
}

async function toggleScreen() {
  if (screenTrack) {
    await screenTrack.unpublish().catch(() => {});
    localStream.removeTrack(screenTrack.track);
    screenTrack = null;
    updateLocalFlags();
    return;
  }
  try {
    screenTrack = await room.publishScreen();
    const lt = screenTrack;
    lt.track.addEventListener("ended", () => {
      if (screenTrack === lt) screenTrack = null;
      localStream.removeTrack(lt.track);
      updateLocalFlags();
    });
    systemMessage("You are sharing your screen.");
  } catch (err) {
    systemMessage(`Screen sharing failed: ${err.message}`);
  }
  updateLocalFlags();
}

async function sendChat(ev) {
  ev.preventDefault();
  const text = $("chat-input").value.trim();
  if (!text || !room) return;
  $("chat-input").value = "";
  try {
    await room.sendData({ text });
    chatMessage("you", text);
  } catch (err) {
    systemMessage(`Message not sent: ${err.message}`);
  }
}

async function leave() {
  const r = room;
  room = null;
  await r?.leave();
  showLobby();
}

/** Receive statistics of the subscriber connection, for tests and curious people. */
async function stats() {
  const out = { video: { framesDecoded: 0, packetsReceived: 0 }, audio: { packetsReceived: 0, bytesReceived: 0 }, tiles: [] };
  const pc = room?._sub;
  if (pc) {
    (await pc.getStats()).forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "video") {
        out.video.framesDecoded += s.framesDecoded || 0;
        out.video.packetsReceived += s.packetsReceived || 0;
      } else if (s.kind === "audio") {
        out.audio.packetsReceived += s.packetsReceived || 0;
        out.audio.bytesReceived += s.bytesReceived || 0;
      }
    });
  }
  for (const [key, node] of tiles) {
    const v = node.querySelector("video");
    out.tiles.push({ key, name: node.querySelector(".name").textContent, videoWidth: v.videoWidth, novideo: node.classList.contains("novideo") });
  }
  out.state = room?.state || "idle";
  out.transport = room?.transport?.kind || "";
  out.participants = room ? [...room.participants.values()].map((p) => p.identity) : [];
  return out;
}

window.parleyDemo = { room: null, stats, join: () => join() };

async function init() {
  $("join-form").addEventListener("submit", join);
  $("chat-form").addEventListener("submit", sendChat);
  $("mic-btn").addEventListener("click", () => toggleSource("microphone"));
  $("cam-btn").addEventListener("click", () => toggleSource("camera"));
  $("screen-btn").addEventListener("click", toggleScreen);
  $("leave-btn").addEventListener("click", leave);
  $("name").value = params.get("name") || localStorage.getItem("parley.name") || "";
  if (params.get("room")) $("room").value = params.get("room");
  if (params.get("transport")) $("transport").value = params.get("transport");
  if (params.get("camera") === "0") $("with-camera").checked = false;
  if (params.get("mic") === "0") $("with-mic").checked = false;
  try {
    info = await fetchServerInfo(location.origin);
    const wt = info.webtransport_url ? "WebTransport + WebSocket" : "WebSocket";
    $("server-line").textContent = `Parley ${info.version} · ${wt}${info.dev ? " · development mode (tokens minted for you)" : ""}`;
    $("token-row").classList.toggle("hidden", !!info.dev);
    $("token").required = !info.dev;
  } catch (err) {
    $("server-line").textContent = `Server info unavailable: ${err.message}`;
    $("token-row").classList.remove("hidden");
  }
  if (params.get("autojoin") === "1") join();
}

init();
