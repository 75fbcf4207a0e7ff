package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
)

// testSecret is the token secret of the test node.
const testSecret = "bench-test-secret-0123456789"

// startTestNode runs a whole node in-process on free ports.
func startTestNode(t *testing.T) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.HTTPAddr = "127.0.0.1:0"
	cfg.HTTP.WebTransportAddr = "127.0.0.1:0"
	cfg.Media.MediaPort = 0
	cfg.Dev = true
	cfg.TokenSecret = testSecret
	level := slog.LevelError
	if os.Getenv("PARLEY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	n, err := node.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return n
}

// runJSON runs the command with args and decodes its JSON report into out.
func runJSON(t *testing.T, args []string, out any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, append(args, "--json"), &stdout, &stderr); err != nil {
		t.Fatalf("parley-bench %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	return stderr.String()
}

// checkSane asserts what any loopback run must show.
func checkSane(t *testing.T, r *Report, receivers int) {
	t.Helper()
	if r.FailedClients != 0 || len(r.Errors) > 0 {
		t.Errorf("failed clients %d: %v", r.FailedClients, r.Errors)
	}
	if r.Receivers != receivers {
		t.Errorf("receivers = %d, want %d", r.Receivers, receivers)
	}
	p := r.Packets
	if p.Sent == 0 || p.Expected == 0 || p.Received == 0 {
		t.Fatalf("no packets counted: %+v", p)
	}
	// Loopback loses nothing; a packet the race detector delays past the
	// drain would show as lost, so allow one in a thousand.
	if p.LossPct > 0.1 {
		t.Errorf("loss %.3f %% on loopback: %+v", p.LossPct, p)
	}
	if r.Latency.Count == 0 || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 || r.Latency.Max < r.Latency.P99 {
		t.Errorf("latency not sane: %+v", r.Latency)
	}
	if r.Join.Count != receivers || r.Join.P50 <= 0 {
		t.Errorf("join times not sane: %+v", r.Join)
	}
	if r.ReceivedBitrate <= 0 || r.PerReceiverBitrate <= 0 {
		t.Errorf("bitrate not sane: %v total, %v per receiver", r.ReceivedBitrate, r.PerReceiverBitrate)
	}
	if r.ClientCPUSeconds <= 0 {
		t.Errorf("client CPU %v", r.ClientCPUSeconds)
	}
}

// TestFanoutAgainstNode runs a tiny real benchmark (1 publisher, 2
// subscribers, 2 s) against an in-process node, with tokens from its dev
// endpoint and server figures from its /metrics.
func TestFanoutAgainstNode(t *testing.T) {
	n := startTestNode(t)
	var r Report
	runJSON(t, []string{"--url", n.URL(), "--subscribers", "2", "--duration", "2s", "--warmup", "300ms"}, &r)
	checkSane(t, &r, 2)
	// Each subscriber gets every packet of both tracks.
	if r.Packets.Expected != 2*r.Packets.Sent {
		t.Errorf("expected %d packets, want 2 x sent (%d)", r.Packets.Expected, r.Packets.Sent)
	}
	s := r.Server
	if s.Source != sourceMetrics || s.ForwardedSrc != sourceMetrics {
		t.Errorf("server figures from %q/%q, want metrics: %s", s.Source, s.ForwardedSrc, s.SourceError)
	}
	if s.CPUSeconds <= 0 || s.RSSMaxMiB <= 0 || s.PacketsPerCPUSecond <= 0 {
		t.Errorf("server figures not sane: %+v", s)
	}
	// The node forwards what the clients receive, give or take the packets
	// in flight at the window's edges.
	if s.Forwarded < r.Packets.Received*9/10 {
		t.Errorf("server forwarded %d, clients received %d", s.Forwarded, r.Packets.Received)
	}
}

// TestMeetingWithProcFallback runs a 2-person meeting over WebTransport
// signaling with locally minted tokens; /metrics is pointed nowhere, so the
// server figures must come from /proc of --server-pid (this process, where
// the node runs).
func TestMeetingWithProcFallback(t *testing.T) {
	n := startTestNode(t)
	var r Report
	stderr := runJSON(t, []string{
		"--url", n.SignalURL(), "--transport", "wt", "--mode", "meeting", "--publishers", "2",
		"--subscribers", "0", "--video=false", "--duration", "1500ms", "--warmup", "200ms",
		"--token-secret", testSecret, "--metrics-url", n.URL() + "/no-such-metrics",
		"--server-pid", strconv.Itoa(os.Getpid()),
	}, &r)
	checkSane(t, &r, 2)
	if r.Transport != transportWT {
		t.Errorf("transport %q, want wt", r.Transport)
	}
	if r.Server.Source != sourceProc || r.Server.ForwardedSrc != "clients" || r.Server.CPUSeconds <= 0 {
		t.Errorf("server figures: %+v", r.Server)
	}
	if !strings.Contains(stderr, "server figures from proc") {
		t.Errorf("the fallback is not announced: %q", stderr)
	}
}

// TestRefusals checks the settings the command rejects before any I/O.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--transport", "quic"}, "want ws or wt"},
		{[]string{"--mode", "party"}, "want fanout or meeting"},
		{[]string{"--audio=false", "--video=false"}, "at least one"},
		{[]string{"--url", "ftp://x"}, "want http"},
		{[]string{"--search", "--maxClients", "5", "--search-min", "10"}, "search-min"},
		{[]string{"stray"}, "unexpected arguments"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &out); err == nil ||
		!strings.Contains(out.String(), "--maxClients") || !strings.Contains(out.String(), "Usage:") {
		t.Errorf("--help: %v\n%s", err, out.String())
	}
}

// TestLocalNode runs the benchmark against a node it starts in its own
// process (--local) and writes an allocation profile.
func TestLocalNode(t *testing.T) {
	prof := t.TempDir() + "/allocs.pprof"
	var r Report
	runJSON(t, []string{"--local", "--subscribers", "1", "--audio=false", "--duration", "1s",
		"--warmup", "200ms", "--memprofile", prof}, &r)
	checkSane(t, &r, 1)
	if r.Server.Source != sourceMetrics || !strings.Contains(r.Server.Note, "in-process") {
		t.Errorf("server figures of a --local run: %+v", r.Server)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("allocation profile not written: %v", err)
	}
}
