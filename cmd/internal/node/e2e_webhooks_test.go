package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/cmd/internal/whtest"
	"github.com/parleyhq/parley/edge/webhook"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/sdk/client"
)

// hookSecret is the HMAC secret of the test receivers' target.
var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("parley-webhook-test-secret-32byt"))

// fastWebhooks makes delivery retry and give up quickly.
func fastWebhooks(c *node.Config) {
	w := webhook.DefaultConfig()
	w.AttemptTimeout = 400 * time.Millisecond
	w.BackoffBase, w.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	w.MaxAge = time.Minute
	w.PollInterval = 50 * time.Millisecond
	c.Webhooks = w
	// The race detector and parallel test packages on 2 cores make a
	// call 100x slower than in production; the deadline is not under test.
	c.Plugins.Defaults.CallTimeout = 5 * time.Second
}

// hookPluginDir is a plugin directory with the stock presencewebhook
// plugin sending every event to url, signed with hookSecret.
func hookPluginDir(t *testing.T, url string) string {
	t.Helper()
	return pluginDir(t, map[string]string{"presencewebhook": fmt.Sprintf(
		`{"config": {"targets": [{"name": "site", "url": %q, "secret": %q}]}}`, url+"/hook", hookSecret)})
}

// keysAt returns a key source that reads GET /pki of a node.
func keysAt(n *node.Node) func() ([]ed25519.PublicKey, error) {
	return func() ([]ed25519.PublicKey, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return whtest.FetchKeys(ctx, n.URL()+"/pki")
	}
}

// newHookCluster starts three nodes whose presencewebhook plugin sends to
// a new receiver, which verifies with the keys of a node that does not
// lead.
func newHookCluster(t *testing.T) ([]*node.Node, *whtest.Receiver) {
	t.Helper()
	rcv := whtest.New(hookSecret, nil)
	t.Cleanup(rcv.Close)
	dir := hookPluginDir(t, rcv.URL())
	nodes := newTestCluster(t, 3, func(_ int, c *node.Config) {
		c.PluginDir = dir
		fastWebhooks(c)
	})
	rcv.SetKeys(keysAt(follower(t, nodes)))
	return nodes, rcv
}

// leaderOf returns the node that leads.
func leaderOf(t *testing.T, nodes []*node.Node) *node.Node {
	t.Helper()
	var l *node.Node
	eventually(t, 10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.Store().IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// follower returns a node that does not lead.
func follower(t *testing.T, nodes []*node.Node) *node.Node {
	t.Helper()
	l := leaderOf(t, nodes)
	for _, n := range nodes {
		if n != l {
			return n
		}
	}
	t.Fatal("no follower")
	return nil
}

// roomScript is the life of one room: a joins and publishes audio, b
// joins and leaves, a unpublishes and leaves. Its steps interleave with
// other rooms'.
type roomScript struct {
	nodes  []*node.Node
	room   string
	stop   func() // stops the track's packets
	a, b   *client.Client
	track  *client.LocalTrack
	aNode  *node.Node
	bNode  *node.Node
	prefix string
}

// want is the webhook sequence the script gives at a receiver.
func (s *roomScript) want() []string {
	a, b := s.prefix+"a", s.prefix+"b"
	return []string{"room.started", "participant.joined " + a, "track.published " + a, "participant.joined " + b,
		"participant.left " + b, "track.unpublished " + a, "participant.left " + a, "room.finished"}
}

func (s *roomScript) step(t *testing.T, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var err error
	switch i {
	case 0:
		s.a = connectClient(t, s.aNode, s.room, s.prefix+"a", nil)
	case 1:
		if s.track, err = s.a.PublishRTP(ctx, webrtc.MimeTypeVP8); err == nil {
			pctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go pump(pctx, s.track, done)
			s.stop = func() { cancel(); <-done }
			t.Cleanup(s.stop)
			eventually(t, 15*time.Second, s.room+": the track published", func() bool { return s.tracks() == 1 })
		}
	case 2:
		s.b = connectClient(t, s.bNode, s.room, s.prefix+"b", nil)
	case 3:
		err = s.b.Leave(ctx)
	case 4:
		s.stop()
		err = s.a.Unpublish(ctx, s.track)
	case 5:
		err = s.a.Leave(ctx)
	}
	if err != nil {
		t.Fatalf("room %s step %d: %v", s.room, i, err)
	}
}

// tracks counts the tracks published in the script's room, on whichever
// node hosts it.
func (s *roomScript) tracks() int {
	for _, n := range s.nodes {
		for _, r := range n.Rooms().Rooms() {
			if r.Name == s.room {
				return r.Tracks
			}
		}
	}
	return 0
}

const scriptSteps = 6

// runScripts runs one script per room, their steps interleaved.
func runScripts(t *testing.T, nodes []*node.Node, prefix string, rooms int) []*roomScript {
	t.Helper()
	var ss []*roomScript
	for i := range rooms {
		ss = append(ss, &roomScript{nodes: nodes, room: fmt.Sprintf("%sroom-%d", prefix, i), prefix: prefix,
			aNode: nodes[i%len(nodes)], bNode: nodes[(i+1)%len(nodes)]})
	}
	for step := range scriptSteps {
		for _, s := range ss {
			s.step(t, step)
		}
	}
	return ss
}

// describe names a webhook as the scripts' want does.
func describe(r whtest.Request) string {
	if id := r.Field("identity"); id != "" {
		return r.Type + " " + id
	}
	return r.Type
}

// checkScripts waits until every script's webhooks were acknowledged and
// checks them: exactly the expected ones per room, in order, each signed
// with a key of /pki and with the target's HMAC secret.
func checkScripts(t *testing.T, rcv *whtest.Receiver, ss []*roomScript, exact bool) {
	t.Helper()
	total := 0
	rooms := map[string]*roomScript{}
	for _, s := range ss {
		total += len(s.want())
		rooms[s.room] = s
	}
	mine := func() []whtest.Request {
		var out []whtest.Request
		for _, r := range rcv.Unique() {
			if rooms[r.Field("room")] != nil {
				out = append(out, r)
			}
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(mine()) < total && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := map[string][]string{}
	for _, r := range mine() {
		got[r.Field("room")] = append(got[r.Field("room")], describe(r))
		if r.V1A < 1 || r.V1 != 1 {
			t.Errorf("%s: %d v1a and %d v1 signatures", r.ID, r.V1A, r.V1)
		}
	}
	for room, s := range rooms {
		if strings.Join(got[room], ", ") != strings.Join(s.want(), ", ") {
			t.Errorf("room %s got\n  %s\nwant\n  %s", room, strings.Join(got[room], ", "), strings.Join(s.want(), ", "))
		}
	}
	if n := len(mine()); n < total {
		t.Errorf("%d of %d webhooks at the receiver after 60 s", n, total)
	}
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Errorf("requests that did not verify: %q", errs)
	}
	if exact {
		if n, u := len(rcv.Requests()), len(rcv.Unique()); n != u {
			t.Errorf("%d requests for %d webhooks: duplicates without a failure", n, u)
		}
	}
}

// TestWebhooksClusterChurn: on a three-node cluster, rooms whose
// participants join through different nodes, publish, unpublish and leave
// give exactly the expected webhooks at a real receiver, per room in
// order, each verifying against /pki of a follower (Ed25519) and with
// the target's secret (HMAC), none twice; then, with the receiver down
// (503, then dropped connections, then refusing connections) during more
// churn, everything arrives once it is up, in order per room.
func TestWebhooksClusterChurn(t *testing.T) {
	nodes, rcv := newHookCluster(t)
	eventually(t, 5*time.Second, "the pipeline on the leader only", func() bool {
		running := 0
		for _, n := range nodes {
			if n.WebhooksRunning() {
				running++
				if !n.Store().IsLeader() {
					return false
				}
			}
		}
		return running == 1
	})
	ss := runScripts(t, nodes, "c1-", 3)
	checkScripts(t, rcv, ss, true)
	if t.Failed() {
		t.FailNow()
	}
	time.Sleep(500 * time.Millisecond) // nothing more comes
	checkScripts(t, rcv, ss, true)

	rcv.SetMode(whtest.Mode{Status: 503})
	down := len(rcv.Requests())
	ss2 := runScripts(t, nodes[1:], "c2-", 2)
	eventually(t, 10*time.Second, "retried failures", func() bool { return len(rcv.Requests()) > down+4 })
	rcv.SetMode(whtest.Mode{Drop: true})
	dropped := len(rcv.Requests())
	eventually(t, 10*time.Second, "dropped connections", func() bool { return len(rcv.Requests()) > dropped+2 })
	rcv.Down() // connections refused
	rcv.SetMode(whtest.Mode{})
	ss3 := runScripts(t, nodes, "c2b-", 1)
	time.Sleep(500 * time.Millisecond)
	if err := rcv.Up(); err != nil {
		t.Fatal(err)
	}
	checkScripts(t, rcv, append(ss2, ss3...), false)
	if t.Failed() {
		t.FailNow()
	}
	rotateKeys(t, nodes, rcv)
}

// rotateKeys rotates the cluster's signing key: /pki of every node serves
// both keys, and webhooks carry two v1a signatures, one per key, until the
// old key is retired.
func rotateKeys(t *testing.T, nodes []*node.Node, rcv *whtest.Receiver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := follower(t, nodes)
	old, err := keysAt(f)()
	if err != nil || len(old) != 1 {
		t.Fatalf("keys before the rotation: %d, %v", len(old), err)
	}
	if _, err := f.Store().RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		eventually(t, 5*time.Second, n.ID()+" serving both keys at /pki", func() bool {
			keys, err := keysAt(n)()
			return err == nil && len(keys) == 2 && (keys[0].Equal(old[0]) || keys[1].Equal(old[0]))
		})
	}
	before := len(rcv.Requests())
	ss := runScripts(t, nodes, "c3-", 1)
	checkScripts(t, rcv, ss, false)
	for _, r := range rcv.Requests()[before:] {
		if r.V1A != 2 || r.V1AValid != 2 {
			t.Errorf("%s during the rotation: %d v1a signatures, %d verify", r.ID, r.V1A, r.V1AValid)
		}
	}
	if n, err := f.Store().RetireSigningKeys(ctx); err != nil || n != 1 {
		t.Fatalf("retire: %d, %v", n, err)
	}
	eventually(t, 5*time.Second, "one key at /pki after retiring", func() bool {
		keys, err := keysAt(f)()
		return err == nil && len(keys) == 1 && !keys[0].Equal(old[0])
	})
}

// hookNode starts a single node whose presencewebhook plugin sends to a
// new receiver verifying with the node's /pki.
func hookNode(t *testing.T, mutate func(*node.Config)) (*node.Node, *whtest.Receiver) {
	t.Helper()
	rcv := whtest.New(hookSecret, nil)
	t.Cleanup(rcv.Close)
	dir := hookPluginDir(t, rcv.URL())
	n := newNode(t, func(c *node.Config) {
		c.PluginDir = dir
		c.Plugins.CacheDir = wazeroCache
		fastWebhooks(c)
		if mutate != nil {
			mutate(c)
		}
	})
	rcv.SetKeys(keysAt(n))
	return n, rcv
}

// visit joins room as identity and leaves: joined and left webhooks (and
// the room's started and finished).
func visit(t *testing.T, n *node.Node, room, identity string) {
	t.Helper()
	c := connectClient(t, n, room, identity, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
}

// attempts counts the requests per webhook id of room.
func attempts(rcv *whtest.Receiver, room string) map[string]int {
	out := map[string]int{}
	for _, r := range rcv.Requests() {
		if r.Field("room") == room {
			out[r.ID]++
		}
	}
	return out
}

// metric returns the value of a series of the node's /metrics (the sample
// count of a histogram): the first with the given label values, given as
// name, value pairs ("" for none).
func metric(t *testing.T, n *node.Node, name string, labels ...string) float64 {
	t.Helper()
	_, fams := scrape(t, n.URL()+"/metrics", nil)
	f := fams[name]
	if f == nil {
		t.Fatalf("metric %s missing", name)
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && (labels[i] == "" || have[labels[i]] == labels[i+1])
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("metric %s%q missing", name, labels)
	return 0
}

// TestWebhooksDeliveryOutcomes on one node: a 4xx answer dead-letters a
// webhook after one attempt; 5xx answers and timeouts are retried until
// the receiver acknowledges; the metrics count each outcome.
func TestWebhooksDeliveryOutcomes(t *testing.T) {
	n, rcv := hookNode(t, nil)

	rcv.SetMode(whtest.Mode{Status: 400})
	visit(t, n, "four", "x")
	eventually(t, 10*time.Second, "the 4xx webhooks dead", func() bool { return metric(t, n, "parley_webhook_dead", "", "") >= 4 })
	time.Sleep(300 * time.Millisecond) // backoff is 20-200 ms: a retry would show
	for id, k := range attempts(rcv, "four") {
		if k != 1 {
			t.Errorf("4xx webhook %s POSTed %d times", id, k)
		}
	}
	if got := len(attempts(rcv, "four")); got != 4 {
		t.Errorf("%d webhooks of room four, want 4 (started, joined, left, finished)", got)
	}

	rcv.SetMode(whtest.Mode{Status: 503})
	visit(t, n, "five", "y")
	eventually(t, 10*time.Second, "5xx retried", func() bool {
		for _, k := range attempts(rcv, "five") {
			if k >= 3 {
				return true
			}
		}
		return false
	})
	rcv.SetMode(whtest.Mode{Hang: true})
	hung := len(rcv.Requests())
	eventually(t, 10*time.Second, "timed-out attempts retried", func() bool { return len(rcv.Requests()) >= hung+2 })
	rcv.SetMode(whtest.Mode{})
	eventually(t, 10*time.Second, "room five delivered", func() bool {
		acked := 0
		for _, r := range rcv.Unique() {
			if r.Field("room") == "five" {
				acked++
			}
		}
		return acked == 4
	})
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Errorf("requests that did not verify: %q", errs)
	}
	if v := metric(t, n, "parley_webhook_deliveries_total", "outcome", "ok"); v != 4 {
		t.Errorf("ok deliveries = %v, want 4", v)
	}
	if v := metric(t, n, "parley_webhook_deliveries_total", "outcome", "retry"); v < 3 {
		t.Errorf("retried deliveries = %v", v)
	}
	if v := metric(t, n, "parley_webhook_deliveries_total", "outcome", "dead"); v != 4 {
		t.Errorf("dead deliveries = %v, want 4", v)
	}
	if v := metric(t, n, "parley_webhook_delivery_latency_seconds", "", ""); v != 4 {
		t.Errorf("latency observations = %v, want 4", v)
	}
	eventually(t, 5*time.Second, "the outbox empty", func() bool { return metric(t, n, "parley_webhook_pending", "", "") == 0 })
	if v := metric(t, n, "parley_plugin_call_duration_seconds", "plugin", "presencewebhook", "hook", "presence"); v < 8 {
		t.Errorf("presencewebhook calls observed = %v, want at least one per event (8)", v)
	}
}

// TestWebhooksDeliveredAtShutdown: stopping a single node delivers the
// left and room.finished webhooks of the participants the stop removed
// before Shutdown returns.
func TestWebhooksDeliveredAtShutdown(t *testing.T) {
	rcv := whtest.New(hookSecret, nil)
	t.Cleanup(rcv.Close)
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.HTTPAddr, cfg.HTTP.WebTransportAddr = "127.0.0.1:0", ""
	cfg.Media.MediaPort, cfg.Media.IncludeLoopback, cfg.Dev = 0, true, true
	cfg.PluginDir = hookPluginDir(t, rcv.URL())
	cfg.Plugins.CacheDir = wazeroCache
	fastWebhooks(&cfg)
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys, err := keysAt(n)()
	if err != nil {
		t.Fatal(err)
	}
	rcv.SetKeys(func() ([]ed25519.PublicKey, error) { return keys, nil })
	connectClient(t, n, "closing", "stayer", nil)
	eventually(t, 10*time.Second, "the joined webhook", func() bool { return len(rcv.Unique()) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rcv.Unique() {
		got = append(got, describe(r))
	}
	if want := "room.started, participant.joined stayer, participant.left stayer, room.finished"; strings.Join(got, ", ") != want {
		t.Fatalf("webhooks by the end of Shutdown: %s, want %s", strings.Join(got, ", "), want)
	}
	if errs := rcv.Errors(); len(errs) > 0 {
		t.Errorf("requests that did not verify: %q", errs)
	}
}

// TestWebhooksWaitForClusterPlugins: the leader runs the pipeline only
// once it has loaded every plugin of the cluster's plugin set, so that no
// presence event is processed without the presence plugins that should
// see it. A cluster plugin no node can load holds the pipeline (events
// stay journaled, nothing is lost); removing it lets them through.
func TestWebhooksWaitForClusterPlugins(t *testing.T) {
	nodes, rcv := newHookCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	garbage := []byte("\x00asm\x01\x00\x00\x00 not really a module")
	sum := sha256.Sum256(garbage)
	rec := raftstore.PluginRecord{Name: "unloadable", Version: "1", SHA256: hex.EncodeToString(sum[:])}
	if err := nodes[0].Store().PutPlugin(ctx, rec, garbage); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the pipeline held on every node", func() bool {
		for _, n := range nodes {
			if n.WebhooksRunning() {
				return false
			}
		}
		return true
	})
	ss := runScripts(t, nodes, "held-", 1)
	time.Sleep(500 * time.Millisecond)
	if n := len(rcv.Requests()); n != 0 {
		t.Fatalf("%d webhooks sent while the leader lacked a cluster plugin", n)
	}
	if err := nodes[1].Store().DeletePlugin(ctx, rec.Name); err != nil {
		t.Fatal(err)
	}
	checkScripts(t, rcv, ss, true)
}
