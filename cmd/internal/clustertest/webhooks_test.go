package clustertest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/cmd/internal/whtest"
)

// hookSecret is the HMAC secret of the receivers' target.
var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("clustertest-webhook-secret-32byt"))

var (
	wasmOnce sync.Once
	hookWasm string
	wasmErr  error
)

// presenceWasm builds the stock presencewebhook plugin once per run.
func presenceWasm(t testing.TB) string {
	t.Helper()
	wasmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-clustertest-wasm-")
		if err != nil {
			wasmErr = err
			return
		}
		hookWasm = filepath.Join(dir, "presencewebhook.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", hookWasm, "./plugins/stock/presencewebhook")
		cmd.Dir = filepath.Join("..", "..", "..")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			wasmErr = fmt.Errorf("build presencewebhook: %v\n%s", err, out)
		}
	})
	if wasmErr != nil {
		t.Fatal(wasmErr)
	}
	return hookWasm
}

// hookArgs are the serve flags that load the presencewebhook plugin with
// rcv as its one target and make delivery retry quickly.
func hookArgs(t testing.TB, rcv *whtest.Receiver) []string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(presenceWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`{"config": {"targets": [{"name": "site", "url": %q, "secret": %q}]}}`,
		rcv.URL()+"/hook", hookSecret)
	if err := os.WriteFile(filepath.Join(dir, "presencewebhook.wasm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "presencewebhook.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--plugin-dir", dir, "--plugin-call-timeout", "5s", "--webhook-attempt-timeout", "1s", "--webhook-per-host", "16",
		"--webhook-backoff-base", "20ms", "--webhook-backoff-max", "300ms", "--webhook-poll-interval", "50ms"}
}

// keysOf returns a key source for a receiver: the public keys of /pki of
// the first of procs that answers, fetched once and kept (the tests do
// not rotate keys).
func keysOf(procs func() []*proc) func() ([]ed25519.PublicKey, error) {
	var mu sync.Mutex
	var keys []ed25519.PublicKey
	return func() ([]ed25519.PublicKey, error) {
		mu.Lock()
		defer mu.Unlock()
		if keys != nil {
			return keys, nil
		}
		var errs []string
		for _, p := range procs() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			k, err := whtest.FetchKeys(ctx, p.baseURL()+"/pki")
			cancel()
			if err == nil {
				keys = k
				return keys, nil
			}
			errs = append(errs, err.Error())
		}
		return nil, fmt.Errorf("no node serves /pki: %s", strings.Join(errs, "; "))
	}
}

// visit is a participant that joined a room and left it: through node
// (the room's node), done when the leave was answered.
type visit struct {
	room, identity string
	node           string
	done           time.Time
}

// churn makes workers join and leave new rooms through random live nodes,
// each pausing pause between visits, until the function it returns is
// called; that returns the visits that completed (join and leave both
// answered).
func churn(t testing.TB, workers int, pause time.Duration, live func() []*proc) func() []visit {
	var mu sync.Mutex
	var done []visit
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
				ps := live()
				p := ps[rand.IntN(len(ps))]
				v := visit{room: fmt.Sprintf("w%d-%d", w, i), identity: fmt.Sprintf("u%d-%d", w, i), node: p.id}
				cl, err := dial(t, p, v.room, v.identity, nil)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = cl.Leave(ctx)
				cancel()
				cl.Close()
				if err == nil {
					v.done = time.Now()
					mu.Lock()
					done = append(done, v)
					mu.Unlock()
				}
			}
		})
	}
	return func() []visit {
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return append([]visit(nil), done...)
	}
}

// hookIndex indexes what a receiver acknowledged.
type hookIndex struct {
	byKey map[string]bool // "type room identity" and "type room"
}

func indexHooks(reqs []whtest.Request) hookIndex {
	ix := hookIndex{byKey: map[string]bool{}}
	for _, r := range reqs {
		ix.byKey[r.Type+" "+r.Field("room")] = true
		ix.byKey[r.Type+" "+r.Field("room")+" "+r.Field("identity")] = true
		if pid := r.Field("participant_id"); pid != "" {
			ix.byKey[r.Type+" pid "+pid] = true
		}
	}
	return ix
}

// missingVisits lists the webhooks of vs that did not arrive.
func (ix hookIndex) missingVisits(vs []visit) []string {
	var miss []string
	for _, v := range vs {
		keys := []string{"room.started " + v.room, "room.finished " + v.room,
			"participant.joined " + v.room + " " + v.identity, "participant.left " + v.room + " " + v.identity}
		for _, k := range keys {
			if !ix.byKey[k] {
				miss = append(miss, k)
			}
		}
	}
	return miss
}

// checkDuplicates checks that every request of one webhook id carries the
// same body, and that no event gave two webhook ids (receivers could not
// de-duplicate those); it returns the number of duplicate requests.
func checkDuplicates(t *testing.T, reqs []whtest.Request) int {
	t.Helper()
	bodies := map[string][]byte{}
	ids := map[string]string{} // event id -> webhook id
	dups := 0
	for _, r := range reqs {
		if b, ok := bodies[r.ID]; ok {
			dups++
			if !bytes.Equal(b, r.Body) {
				t.Errorf("webhook %s delivered with two bodies:\n%s\n%s", r.ID, b, r.Body)
			}
			continue
		}
		bodies[r.ID] = r.Body
		ev := r.Field("event_id")
		if other, ok := ids[ev]; ok && other != r.ID {
			t.Errorf("event %s (%s) delivered under two webhook ids: %s and %s", ev, r.Type, other, r.ID)
		}
		ids[ev] = r.ID
	}
	return dups
}

// TestWebhooksLeaderKilledRepeatedly SIGKILLs the leader of a three-process
// cluster three times while clients join and leave rooms through every
// node and webhooks are being delivered (the receiver is slow), restarting
// the killed node each time. Every webhook arrives at least once, every
// duplicate carries the webhook-id and body of its first delivery, and the
// participants the killed node hosted get their left webhooks, their
// tracks their track.unpublished and their rooms room.finished.
func TestWebhooksLeaderKilledRepeatedly(t *testing.T) {
	rcv := whtest.New(hookSecret, nil)
	t.Cleanup(rcv.Close)
	c := newTestCluster(t, append(hookArgs(t, rcv), "--cluster-failure-grace", "2s")...)
	var liveMu sync.Mutex
	dead := map[*proc]bool{}
	live := func() []*proc {
		liveMu.Lock()
		defer liveMu.Unlock()
		var out []*proc
		for _, p := range c.procs {
			if !dead[p] {
				out = append(out, p)
			}
		}
		return out
	}
	rcv.SetKeys(keysOf(live))
	t.Cleanup(func() {
		if t.Failed() {
			logWebhookMetrics(t, live())
		}
	})
	rcv.SetMode(whtest.Mode{Delay: 5 * time.Millisecond})
	stopChurn := churn(t, 3, 50*time.Millisecond, live)
	type stayer struct {
		room, node string
		killed     time.Time
	}
	var stayers []stayer
	for k := range 3 {
		old := c.leader()
		room := fmt.Sprintf("stay-%d", k)
		pub, err := dial(t, old, room, room+"-pub", nil)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, pub)
		if _, err := dial(t, old, room, room+"-sub", nil); err != nil {
			t.Fatal(err)
		}
		st := stayer{room: room, node: old.id}
		eventually(t, 20*time.Second, room+": its track published", func() bool {
			return indexHooks(rcv.Acked()).byKey["track.published "+room+" "+room+"-pub"]
		})
		time.Sleep(300 * time.Millisecond) // deliveries in flight
		liveMu.Lock()
		dead[old] = true
		liveMu.Unlock()
		st.killed = time.Now()
		stayers = append(stayers, st)
		old.kill()
		t.Logf("kill %d: SIGKILLed leader %s with %d webhooks acknowledged so far", k+1, old.id, len(rcv.Acked()))
		time.Sleep(3 * time.Second) // past the failure grace: its presence ends
		old.start()
		c.waitReady(30*time.Second, c.procs...)
		liveMu.Lock()
		delete(dead, old)
		liveMu.Unlock()
	}
	visits := stopChurn()
	t.Logf("%d visits completed through the kills", len(visits))
	if len(visits) < 10 {
		t.Fatalf("only %d visits completed", len(visits))
	}
	// A join is confirmed only once its presence is committed
	// (core.PresenceFlusher), and a killed node's participants are ended
	// by the leader: every visit's four webhooks must arrive, even for
	// visits that ended an instant before their node was killed.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	err := rcv.Wait(ctx, func([]whtest.Request) bool { return len(indexHooks(rcv.Acked()).missingVisits(visits)) == 0 })
	ix := indexHooks(rcv.Acked())
	if err != nil {
		t.Fatalf("webhooks lost: %v: %q", err, ix.missingVisits(visits))
	}
	for _, s := range stayers {
		// The participants of the killed node joined there before the
		// kill (their clients join again elsewhere, and may come back
		// to the restarted node later); their own participant ids must
		// get a left webhook, the publisher's track an unpublished one.
		found := 0
		for _, r := range rcv.Acked() {
			if r.Field("room") != s.room || r.Field("node") != s.node || r.Type != "participant.joined" || !r.EventAt.Before(s.killed) {
				continue
			}
			pid := r.Field("participant_id")
			found++
			eventually(t, 30*time.Second, "left of "+r.Field("identity")+" on the killed "+s.node, func() bool {
				return indexHooks(rcv.Acked()).byKey["participant.left pid "+pid]
			})
			if strings.HasSuffix(r.Field("identity"), "-pub") && !indexHooks(rcv.Acked()).byKey["track.unpublished pid "+pid] {
				t.Errorf("%s: no track.unpublished for the publisher %s on the killed node", s.room, pid)
			}
		}
		if found != 2 {
			t.Errorf("%s: %d participants joined on the killed node %s, want 2", s.room, found, s.node)
		}
		if !ix.byKey["room.finished "+s.room] {
			eventually(t, 30*time.Second, s.room+" finished", func() bool { return indexHooks(rcv.Acked()).byKey["room.finished "+s.room] })
		}
	}
	dups := checkDuplicates(t, rcv.Requests())
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Errorf("%d requests did not verify: %q", len(errs), errs[:min(len(errs), 5)])
	}
	t.Logf("%d requests, %d webhooks acknowledged, %d redelivered", len(rcv.Requests()), len(rcv.Unique()), dups)
}

// logWebhookMetrics logs each live node's webhook and raft series, for a
// failing test.
func logWebhookMetrics(t testing.TB, procs []*proc) {
	for _, p := range procs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.baseURL()+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Logf("%s: metrics: %v", p.id, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if (strings.HasPrefix(l, "parley_webhook") || strings.HasPrefix(l, "parley_raft_state")) && !strings.Contains(l, "_bucket") {
				lines = append(lines, l)
			}
		}
		t.Logf("%s:\n%s", p.id, strings.Join(lines, "\n"))
	}
}

// newSingle starts one parley process without a cluster, with extra serve
// flags, and waits until it serves.
func newSingle(t *testing.T, extra ...string) *proc {
	t.Helper()
	binary(t)
	p := &proc{t: t, id: "single", dir: t.TempDir(), httpAddr: freeAddr(t)}
	p.args = append([]string{"serve", "--dev", "--data-dir", p.dir, "--http-addr", p.httpAddr, "--webtransport-addr=",
		"--media-port", "0", "--token-secret", tokenSecret, "--admin-token", adminToken, "--plugin-dir", "none"}, extra...)
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(p.dir, "log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("--- log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
	})
	p.start()
	p.waitServing(t)
	return p
}

// waitServing waits until the process answers /healthz.
func (p *proc) waitServing(t *testing.T) {
	t.Helper()
	eventually(t, 20*time.Second, p.id+" serving", func() bool {
		code, err := p.get(context.Background(), "/healthz", nil)
		return err == nil && code == http.StatusOK
	})
}

// metricValue reads one series (without labels) of the process's /metrics.
func (p *proc) metricValue(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.baseURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("%s: no series %s", p.id, name)
	return 0
}

// TestWebhooksSingleNodeSurvivesKill: a single node whose receiver is down
// keeps its pending webhooks across a SIGKILL (they are in the data dir's
// webhook store, fsynced), and delivers all of them, signed with the same
// key, once it restarts and the receiver is up.
func TestWebhooksSingleNodeSurvivesKill(t *testing.T) {
	rcv := whtest.New(hookSecret, nil)
	t.Cleanup(rcv.Close)
	rcv.SetMode(whtest.Mode{Status: 503})
	p := newSingle(t, hookArgs(t, rcv)...)
	rcv.SetKeys(keysOf(func() []*proc { return []*proc{p} }))
	keysBefore, err := keysOf(func() []*proc { return []*proc{p} })()
	if err != nil {
		t.Fatal(err)
	}
	var visits []visit
	for i := range 3 {
		v := visit{room: fmt.Sprintf("single-%d", i), identity: fmt.Sprintf("s%d", i)}
		cl, err := dial(t, p, v.room, v.identity, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := cl.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		visits = append(visits, v)
	}
	eventually(t, 10*time.Second, "12 webhooks pending", func() bool { return p.metricValue(t, "parley_webhook_pending") == 12 })
	p.kill()
	p.start()
	p.waitServing(t)
	keysAfter, err := keysOf(func() []*proc { return []*proc{p} })()
	if err != nil || len(keysAfter) != 1 || !keysAfter[0].Equal(keysBefore[0]) {
		t.Fatalf("signing key changed across the restart: %v", err)
	}
	if v := p.metricValue(t, "parley_webhook_pending"); v != 12 {
		t.Fatalf("%v webhooks pending after the restart, want 12", v)
	}
	rcv.SetMode(whtest.Mode{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rcv.Wait(ctx, func([]whtest.Request) bool { return len(indexHooks(rcv.Acked()).missingVisits(visits)) == 0 }); err != nil {
		t.Fatalf("webhooks lost across the kill: %v: %q", err, indexHooks(rcv.Acked()).missingVisits(visits))
	}
	checkDuplicates(t, rcv.Requests())
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Errorf("requests that did not verify: %q", errs)
	}
	eventually(t, 10*time.Second, "the outbox empty", func() bool { return p.metricValue(t, "parley_webhook_pending") == 0 })
}

// cli runs the parley command against p and returns its output; a
// non-zero exit fails the test.
func (p *proc) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), append(args, "--http-addr", p.httpAddr, "--admin-token", adminToken)...)
	cmd.Env = append(cleanEnv(), "XDG_CONFIG_HOME="+p.dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("parley %v: %v: %s", args, err, stderr.String())
	}
	return string(out)
}

// visitRoom joins room through p as identity and leaves.
func visitRoom(t *testing.T, p *proc, room, identity string) {
	t.Helper()
	cl, err := dial(t, p, room, identity, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Leave(ctx); err != nil {
		t.Fatal(err)
	}
}

// ackedIn counts the acknowledged webhooks of room.
func ackedIn(rcv *whtest.Receiver, room string) int {
	n := 0
	for _, r := range rcv.Unique() {
		if r.Field("room") == room {
			n++
		}
	}
	return n
}

// TestWebhooksCLI drives the webhook outbox of a real process with the
// real CLI: webhooks a receiver refuses with 400 are dead after one
// attempt and `parley webhooks list --dead` shows them; `retry --host`
// sends them again; `clear --host` drops pending webhooks of that host
// only; `parley keys rotate` makes webhooks carry two v1a signatures.
func TestWebhooksCLI(t *testing.T) {
	rcv := whtest.New(hookSecret, nil)
	t.Cleanup(rcv.Close)
	p := newSingle(t, hookArgs(t, rcv)...)
	rcv.SetKeys(func() ([]ed25519.PublicKey, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return whtest.FetchKeys(ctx, p.baseURL()+"/pki")
	})
	host := rcv.Host()

	rcv.SetMode(whtest.Mode{Status: 400})
	visitRoom(t, p, "refused", "r")
	eventually(t, 10*time.Second, "four dead webhooks", func() bool { return p.metricValue(t, "parley_webhook_dead") == 4 })
	if out := p.cli(t, "webhooks", "list", "--dead", "--host", host); !strings.Contains(out, "refused") ||
		!strings.Contains(out, "HTTP 400") || !strings.Contains(out, "4 dead webhooks") {
		t.Errorf("webhooks list --dead:\n%s", out)
	}
	var list struct {
		Webhooks []struct{ ID, Room, Host string }
	}
	if err := json.Unmarshal([]byte(p.cli(t, "webhooks", "list", "--dead", "--json")), &list); err != nil || len(list.Webhooks) != 4 {
		t.Fatalf("webhooks list --dead --json: %d webhooks, %v", len(list.Webhooks), err)
	}
	for id, k := range attemptsIn(rcv, "refused") {
		if k != 1 {
			t.Errorf("4xx webhook %s POSTed %d times", id, k)
		}
	}
	rcv.SetMode(whtest.Mode{})
	if out := p.cli(t, "webhooks", "retry", "--host", host); out != "retried 4 webhooks\n" {
		t.Errorf("webhooks retry: %q", out)
	}
	eventually(t, 10*time.Second, "the retried webhooks delivered", func() bool { return ackedIn(rcv, "refused") == 4 })
	eventually(t, 10*time.Second, "the outbox empty", func() bool { return p.metricValue(t, "parley_webhook_pending") == 0 })
	if out := p.cli(t, "webhooks", "list", "--dead"); !strings.Contains(out, "no dead webhooks") {
		t.Errorf("dead list after the retry:\n%s", out)
	}

	rcv.SetMode(whtest.Mode{Status: 503})
	visitRoom(t, p, "dropped", "d")
	eventually(t, 10*time.Second, "four pending webhooks", func() bool { return p.metricValue(t, "parley_webhook_pending") == 4 })
	if out := p.cli(t, "webhooks", "list"); !strings.Contains(out, "4 pending webhooks") {
		t.Errorf("webhooks list:\n%s", out)
	}
	if out := p.cli(t, "webhooks", "clear", "--host", "other.example"); out != "cleared 0 webhooks\n" {
		t.Errorf("clear of another host: %q", out)
	}
	if out := p.cli(t, "webhooks", "clear", "--host", host); out != "cleared 4 webhooks\n" {
		t.Errorf("clear --host: %q", out)
	}
	rcv.SetMode(whtest.Mode{})
	if out := p.cli(t, "webhooks", "list"); !strings.Contains(out, "no pending webhooks") {
		t.Errorf("pending list after the clear:\n%s", out)
	}

	p.cli(t, "keys", "rotate")
	before := len(rcv.Requests())
	visitRoom(t, p, "rotated", "k")
	eventually(t, 10*time.Second, "webhooks after the rotation", func() bool { return ackedIn(rcv, "rotated") == 4 })
	for _, r := range rcv.Requests()[before:] {
		if r.V1A != 2 || r.V1AValid != 2 {
			t.Errorf("%s after the rotation: %d v1a signatures, %d verify", r.ID, r.V1A, r.V1AValid)
		}
	}
	if n := ackedIn(rcv, "dropped"); n != 0 {
		t.Errorf("%d cleared webhooks were delivered", n)
	}
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Errorf("requests that did not verify: %q", errs)
	}
}

// attemptsIn counts the requests per webhook id of room.
func attemptsIn(rcv *whtest.Receiver, room string) map[string]int {
	out := map[string]int{}
	for _, r := range rcv.Requests() {
		if r.Field("room") == room {
			out[r.ID]++
		}
	}
	return out
}

// logLines logs the lines of the processes' logs that contain substr.
func logLines(t testing.TB, procs []*proc, substr string) {
	for _, p := range procs {
		b, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		var hits []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, substr) {
				hits = append(hits, l)
			}
		}
		t.Logf("%s: %d log lines with %q: %s", p.id, len(hits), substr, strings.Join(hits[:min(len(hits), 5)], "\n"))
	}
}
