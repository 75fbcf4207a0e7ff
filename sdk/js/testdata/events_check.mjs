// Run by events_test.go with node: feeds server events to a Room and
// checks what it emits and records. Exits non-zero on a mismatch.
globalThis.MediaStream = class { addTrack() {} removeTrack() {} };
const { Room, SERVER_SENDER } = await import(process.argv[2]);

function check(cond, what) {
  if (!cond) {
    console.error("FAIL: " + what);
    process.exit(1);
  }
}

const r = new Room({ token: "x", url: "http://localhost" });
const got = [];
for (const e of ["permissions", "trackMuted", "data", "closing"]) r.on(e, (x) => got.push([e, x]));
r.localParticipant = { id: "PA_me", grants: {} };
r.localTracks.set("cam", Object.assign(Object.create(null), { parleyId: "TR_me", serverMuted: false }));
r._onParticipantJoined({ id: "PA_a", identity: "a", grants: {}, tracks: [{ id: "TR_1", participant_id: "PA_a" }], muted_tracks: ["TR_1"] });
const a = r.participants.get("PA_a");
check(a.mutedTracks.has("TR_1"), "muted_tracks of a joining participant recorded");

r._onEvent("permissions", { grants: { can_subscribe: true } });
check(got[0][0] === "permissions" && got[0][1].can_subscribe === true && !got[0][1].can_publish, "permissions event");
check(r.localParticipant.grants.can_subscribe === true, "local grants updated");

r._onEvent("track_muted", { track_id: "TR_1", participant_id: "PA_a", muted: false });
check(!a.mutedTracks.has("TR_1"), "unmute recorded");
check(got[1][0] === "trackMuted" && got[1][1].participant === a && got[1][1].muted === false, "trackMuted event");

r._onEvent("track_muted", { track_id: "TR_me", participant_id: "PA_me", muted: true });
check(got[2][1].localTrack && got[2][1].localTrack.serverMuted === true && got[2][1].participant === null, "own track muted");

r._onEvent("data", { from: SERVER_SENDER, from_identity: "", to: "PA_me", payload: { x: 1 } });
check(got[3][0] === "data" && got[3][1].fromServer === true && got[3][1].payload.x === 1, "data from the server");
r._onEvent("data", { from: "PA_a", from_identity: "a", payload: 2 });
check(got[4][1].fromServer === false, "data from a participant");

r._onEvent("closing", { reason: "kicked", code: "session_expired", detail: "bye" });
check(got[5][0] === "closing" && got[5][1].reason === "kicked" && got[5][1].detail === "bye", "closing with reason and detail");
check(r._closing && r._closing.code === "session_expired", "closing kept for the teardown");
console.log("ok");
