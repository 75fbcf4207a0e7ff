package node_test

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/parleyhq/parley/cmd/internal/node"
)

func scrape(t *testing.T, url string, hdr map[string]string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return 200, fams
}

func value(f *dto.MetricFamily) float64 {
	m := f.GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestMetricsDuringCall scrapes /metrics while a call runs and checks the
// key series, and that only loopback or token holders may read them.
func TestMetricsDuringCall(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.Dev = false; c.HTTP.MetricsToken = "scrape-secret" })
	c := startCall(t, n, "m")
	c.checkFlowing(t)
	code, fams := scrape(t, n.URL()+"/metrics", nil)
	if code != 200 {
		t.Fatalf("loopback scrape: %d", code)
	}
	for _, name := range []string{"parley_participants", "parley_tracks", "parley_rooms", "parley_media_packets_forwarded_total",
		"parley_media_packets_received_total", "parley_signal_sessions", "process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines"} {
		if fams[name] == nil {
			t.Fatalf("metric %s missing", name)
		}
	}
	if v := value(fams["parley_participants"]); v != 2 {
		t.Fatalf("participants = %v", v)
	}
	if v := value(fams["parley_tracks"]); v != 1 {
		t.Fatalf("tracks = %v", v)
	}
	if in, out := value(fams["parley_media_packets_received_total"]), value(fams["parley_media_packets_forwarded_total"]); in < 20 || out < 20 {
		t.Fatalf("packets in %v out %v", in, out)
	}
	if code, _ := scrape(t, n.URL()+"/metrics", map[string]string{"X-Forwarded-For": "198.51.100.1"}); code != http.StatusUnauthorized {
		t.Fatalf("proxied scrape without token: %d", code)
	}
	if code, _ := scrape(t, n.URL()+"/metrics", map[string]string{"X-Forwarded-For": "198.51.100.1", "Authorization": "Bearer scrape-secret"}); code != 200 {
		t.Fatalf("proxied scrape with token: %d", code)
	}
}
