package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStampRoundTrip(t *testing.T) {
	p := make([]byte, headerLen+5)
	in := stamp{track: 7, seq: 123456, sentNS: 987654321}
	writeStamp(p, in)
	out, ok := readStamp(p)
	if !ok || out != in {
		t.Fatalf("got %+v %v, want %+v", out, ok, in)
	}
	if _, ok := readStamp(p[:headerLen-1]); ok {
		t.Error("short payload accepted")
	}
	p[2] = 'x'
	if _, ok := readStamp(p); ok {
		t.Error("payload without magic accepted")
	}
}

func TestReceivedIn(t *testing.T) {
	var r recvTrack
	got := []uint32{0, 1, 2, 63, 64, 65, 127, 128, 300}
	for _, s := range got {
		r.record(stamp{seq: s}, 100, 10, true)
	}
	r.record(stamp{seq: 64}, 100, 10, true) // duplicate
	for _, tc := range []struct {
		from, to uint32
		want     uint64
	}{
		{0, 301, 9}, {0, 0, 0}, {1, 64, 3}, {63, 65, 2}, {64, 128, 3}, {129, 300, 0}, {300, 1000, 1}, {0, 3, 3},
	} {
		if n := r.receivedIn(tc.from, tc.to); n != tc.want {
			t.Errorf("receivedIn(%d, %d) = %d, want %d", tc.from, tc.to, n, tc.want)
		}
	}
	if r.duplicates != 1 || r.packets != 10 || len(r.latency) != 9 {
		t.Errorf("duplicates %d packets %d latency samples %d", r.duplicates, r.packets, len(r.latency))
	}
}

func TestSummarize(t *testing.T) {
	var ns []int64
	for i := 1; i <= 100; i++ {
		ns = append(ns, int64(i)*int64(time.Millisecond))
	}
	d := summarize(ns)
	if d.Count != 100 || d.P50 != 50 || d.P99 != 99 || d.Max != 100 || d.Mean != 50.5 {
		t.Errorf("%+v", d)
	}
	if (summarize(nil) != Dist{}) {
		t.Error("empty distribution not zero")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 3.3554432e+07
parley_media_packets_forwarded_total{node="a b"} 10
parley_media_packets_forwarded_total{node="c"} 5
garbage line
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m[metricCPU] != 12.5 || m[metricRSS] != 32<<20 || m[metricForwarded] != 15 {
		t.Errorf("%v", m)
	}
}

func TestURLs(t *testing.T) {
	for in, want := range map[string][2]string{
		"http://127.0.0.1:7070":            {"ws://127.0.0.1:7070/v1/signal", "http://127.0.0.1:7070/metrics"},
		"https://h.example/":               {"wss://h.example/v1/signal", "https://h.example/metrics"},
		"ws://127.0.0.1:7070/v1/signal":    {"ws://127.0.0.1:7070/v1/signal", "http://127.0.0.1:7070/metrics"},
		"wss://h.example:8443/v1/signal?x": {"wss://h.example:8443/v1/signal?x", "https://h.example:8443/metrics"},
	} {
		c := defaultConfig()
		c.URL = in
		s, err := c.signalURL()
		if err != nil || s != want[0] || c.metricsURL() != want[1] {
			t.Errorf("%s: signal %q (%v), metrics %q; want %v", in, s, err, c.metricsURL(), want)
		}
	}
}

func TestFramePacketization(t *testing.T) {
	for total, want := range map[int][]int{
		headerLen:        {headerLen},
		maxPayload:       {maxPayload},
		maxPayload + 5:   {maxPayload + 5 - headerLen, headerLen},
		2*maxPayload + 1: {maxPayload, maxPayload + 1 - headerLen, headerLen},
		2083:             {maxPayload, 983},
	} {
		var got []int
		for left := total; left > 0; {
			n := nextPacketSize(left)
			got = append(got, n)
			left -= n
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frame of %d bytes: packets %v, want %v", total, got, want)
		}
	}
}
