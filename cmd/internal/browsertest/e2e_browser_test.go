package browsertest

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// callTimeout bounds each wait for media in a call.
const callTimeout = 25 * time.Second

// joinURL opens the demo page so that it joins room as name right away.
func joinURL(base, room, name, transport string) string {
	q := url.Values{"room": {room}, "name": {name}, "transport": {transport}, "autojoin": {"1"}}
	return base + "/?" + q.Encode()
}

// roomName is unique per test so tests sharing the server do not meet.
func roomName(t *testing.T) string {
	return strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
}

// joined waits until p is connected over transport (any when "auto").
func joined(p *page, transport string) stats {
	p.t.Helper()
	return p.waitStats(callTimeout, "joined over "+transport, func(s stats) bool {
		return s.State == "connected" && (transport == "auto" || s.Transport == transport)
	})
}

// seesVideoOf waits until p decodes video and shows other's tile with
// moving pictures.
func seesVideoOf(p *page, other string) stats {
	p.t.Helper()
	return p.waitStats(callTimeout, "video of "+other, func(s stats) bool {
		if s.Video.FramesDecoded == 0 {
			return false
		}
		return slices.ContainsFunc(s.Tiles, func(tl struct {
			Key        string `json:"key"`
			Name       string `json:"name"`
			VideoWidth int    `json:"videoWidth"`
			NoVideo    bool   `json:"novideo"`
		}) bool {
			return tl.Name == other && tl.VideoWidth > 0 && !tl.NoVideo
		})
	})
}

// hearsAudio waits until p's received audio grows past what it had.
func hearsAudio(p *page) {
	p.t.Helper()
	first := p.waitStats(callTimeout, "audio packets", func(s stats) bool { return s.Audio.PacketsReceived > 0 })
	p.waitStats(callTimeout, "audio still arriving", func(s stats) bool {
		return s.Audio.BytesReceived > first.Audio.BytesReceived && s.Audio.PacketsReceived > first.Audio.PacketsReceived+10
	})
}

// call puts alice and bob in one room over the given transports and checks
// that each sees and hears the other.
func call(t *testing.T, transportA, transportB string) (*browser, *page, *page) {
	t.Helper()
	base := parleyServer(t)
	br := newBrowser(t)
	room := roomName(t)
	start := time.Now()
	a, b := br.newPage("alice"), br.newPage("bob")
	a.navigate(joinURL(base, room, "alice", transportA))
	b.navigate(joinURL(base, room, "bob", transportB))
	joined(a, transportA)
	joined(b, transportB)
	seesVideoOf(a, "bob")
	seesVideoOf(b, "alice")
	hearsAudio(a)
	hearsAudio(b)
	t.Logf("call %s/%s: both see and hear each other after %s", transportA, transportB, time.Since(start).Round(time.Millisecond))
	for _, p := range []*page{a, b} {
		if errs := p.consoleErrors(); len(errs) > 0 {
			t.Errorf("page %s logged errors: %q", p.name, errs)
		}
	}
	return br, a, b
}

func TestBrowserCallWebSocket(t *testing.T) {
	_, a, b := call(t, "websocket", "websocket")
	chat(t, a, b, "hello from alice")
	chat(t, b, a, "hi alice, bob here")
	a.screenshot("call-websocket.png")
	if os.Getenv("PARLEY_UPDATE_SCREENSHOT") != "" {
		src := a.screenshot("demo.png")
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(repoRoot(), "docs", "img", "demo.png")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", dst)
	}
}

func TestBrowserCallWebTransport(t *testing.T) {
	_, a, b := call(t, "webtransport", "webtransport")
	chat(t, b, a, "over webtransport")
	// Drop bob's signaling connection: the SDK resumes the same session,
	// alice never sees bob leave, and media keeps flowing both ways.
	if _, err := eval[bool](a, `(window.__left = [], parleyDemo.room.on("participantLeft", p => __left.push(p.identity)), true)`); err != nil {
		t.Fatal(err)
	}
	bobID, err := eval[string](b, `(window.__resumed = 0, parleyDemo.room.on("reconnected", () => __resumed++), parleyDemo.room.transport.close("test drop"), parleyDemo.room.localParticipant.id)`)
	if err != nil {
		t.Fatal(err)
	}
	waitEval(t, b, `window.__resumed === 1 && parleyDemo.room.state === "connected"`, "bob resumed")
	if id, err := eval[string](b, `parleyDemo.room.localParticipant.id`); err != nil || id != bobID {
		t.Fatalf("bob resumed as %q (%v), want the same participant %q", id, err, bobID)
	}
	before := b.stats().Video.FramesDecoded
	b.waitStats(callTimeout, "video after resume", func(s stats) bool { return s.Video.FramesDecoded > before+10 })
	chat(t, b, a, "still here after resume")
	if left, _ := eval[[]string](a, `window.__left`); len(left) > 0 {
		t.Fatalf("alice saw %q leave during bob's resume", left)
	}
	a.screenshot("call-webtransport.png")
}

// TestBrowserCallMixedTransports holds a call with one page on each
// transport, then works the demo's controls: mute, camera off, screen
// sharing (seen by the other page as a third track) and leave.
func TestBrowserCallMixedTransports(t *testing.T) {
	_, a, b := call(t, "webtransport", "websocket")
	click(t, a, "mic-btn")
	waitEval(t, a, `document.querySelector('.tile.local .flags').textContent === "mic off"`, "mic muted")
	click(t, a, "cam-btn")
	waitEval(t, a, `document.querySelector('.tile.local').classList.contains("novideo")`, "camera off")
	click(t, a, "cam-btn")
	click(t, a, "mic-btn")
	waitEval(t, a, `document.querySelector('.tile.local .flags').textContent === ""`, "mic and camera back on")
	aliceMedia := `([...parleyDemo.room.participants.values()].find(p => p.identity === "alice")?.media.size ?? -1)`
	click(t, a, "screen-btn")
	waitEval(t, b, aliceMedia+` === 3`, "alice's screen share at bob")
	click(t, a, "screen-btn")
	waitEval(t, b, aliceMedia+` === 2`, "alice's screen share gone at bob")
	click(t, a, "leave-btn")
	waitEval(t, b, `parleyDemo.room.participants.size === 0`, "alice gone at bob")
	waitEval(t, a, `!document.getElementById("lobby").classList.contains("hidden")`, "alice back in the lobby")
}

// click clicks the element with id on p.
func click(t *testing.T, p *page, id string) {
	t.Helper()
	if _, err := eval[bool](p, fmt.Sprintf(`(document.getElementById(%q).click(), true)`, id)); err != nil {
		t.Fatalf("page %s: click %s: %v", p.name, id, err)
	}
}

// waitEval polls expr on p until it is true.
func waitEval(t *testing.T, p *page, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(callTimeout)
	for {
		ok, err := eval[bool](p, expr)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("page %s: timed out waiting for %s (%s: %v, %v)", p.name, what, expr, ok, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBrowserReloadMidCall reloads bob's page during a call: alice sees bob
// leave and come back, with video again.
func TestBrowserReloadMidCall(t *testing.T) {
	_, a, b := call(t, "auto", "auto")
	if _, err := eval[bool](a, `(() => {
		window.__events = [];
		parleyDemo.room.on("participantLeft", (p, reason) => __events.push("left:" + p.identity + ":" + reason));
		parleyDemo.room.on("participantJoined", (p) => __events.push("joined:" + p.identity));
		return true;
	})()`); err != nil {
		t.Fatal(err)
	}
	before := a.stats().Video.FramesDecoded
	start := time.Now()
	b.navigate(joinURL(parleyServer(t), roomName(t), "bob", "auto"))
	deadline := time.Now().Add(callTimeout)
	for {
		ev, err := eval[[]string](a, "window.__events")
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ev, func(e string) bool { return strings.HasPrefix(e, "left:bob:") })
		if i >= 0 && slices.Contains(ev[i:], "joined:bob") {
			t.Logf("alice saw bob leave and return after %s: %q", time.Since(start).Round(time.Millisecond), ev)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice did not see bob leave and return; events %q", ev)
		}
		time.Sleep(100 * time.Millisecond)
	}
	joined(b, "auto")
	seesVideoOf(b, "alice")
	a.waitStats(callTimeout, "video of the returned bob", func(s stats) bool {
		return s.Video.FramesDecoded > before+20 && slices.Contains(s.Participants, "bob")
	})
	seesVideoOf(a, "bob")
}

// TestBrowserDemoPageLoads loads the lobby: no console errors, the server
// line filled in, the dev-mode token field hidden; a screenshot is saved.
func TestBrowserDemoPageLoads(t *testing.T) {
	base := parleyServer(t)
	br := newBrowser(t)
	p := br.newPage("lobby")
	p.navigate(base + "/")
	deadline := time.Now().Add(10 * time.Second)
	for {
		line, err := eval[string](p, `document.getElementById("server-line").textContent`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "Parley ") && strings.Contains(line, "WebTransport") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server line never filled in: %q", line)
		}
		time.Sleep(100 * time.Millisecond)
	}
	hidden, err := eval[bool](p, `document.getElementById("token-row").classList.contains("hidden")`)
	if err != nil || !hidden {
		t.Errorf("token field shown in dev mode (hidden=%v, %v)", hidden, err)
	}
	time.Sleep(300 * time.Millisecond) // late errors (module loads, favicon)
	p.screenshot("demo-lobby.png")
	if errs := p.consoleErrors(); len(errs) > 0 {
		t.Fatalf("demo page logged errors: %q", errs)
	}
}

// chat types text into from's chat box and waits for it in to's list.
func chat(t *testing.T, from, to *page, text string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
		const input = document.getElementById("chat-input");
		input.value = %q;
		document.getElementById("chat-form").requestSubmit();
		return true;
	})()`, text)
	if _, err := eval[bool](from, js); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := eval[string](to, `document.getElementById("messages").textContent`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, from.name+text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("page %s never showed %q from %s; chat: %q", to.name, text, from.name, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
