package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/raftstore"
)

// sampleKey matches a commented key line of dist/parley.toml.
var sampleKey = regexp.MustCompile(`^# ?([a-z][a-z0-9-]*) = (.+)$`)

// TestSampleConfig keeps dist/parley.toml in step with the settings: it
// names every key the settings know, once, and nothing else; every value
// it shows loads through the real loader; and a value shown for a setting
// with a default is that default.
func TestSampleConfig(t *testing.T) {
	dir := isolate(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "dist", "parley.toml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var uncommented []string
	for i, line := range strings.Split(string(raw), "\n") {
		m := sampleKey.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if seen[m[1]] {
			t.Errorf("line %d: key %q shown twice", i+1, m[1])
		}
		seen[m[1]] = true
		uncommented = append(uncommented, m[1]+" = "+m[2])
	}
	known := allFlags()
	var missing, unknown []string
	for k := range known {
		if !seen[k] && k != "config" {
			missing = append(missing, k)
		}
	}
	for k := range seen {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	if len(missing) > 0 {
		t.Errorf("dist/parley.toml does not show these settings (add each, commented, with its default and a line on what it does): %v", missing)
	}
	if len(unknown) > 0 {
		t.Errorf("dist/parley.toml shows keys that are not settings: %v", unknown)
	}

	// The file as shipped (all commented) is valid and changes nothing.
	shipped := filepath.Join(dir, "shipped.toml")
	writeFile(t, shipped, string(raw))
	setBy := effective(t, "--config", shipped)["set_by"].(map[string]any)
	delete(setBy, "config")
	if len(setBy) != 0 {
		t.Errorf("the shipped sample sets %v", setBy)
	}

	// Every value shown parses as its setting; shown defaults are true.
	all := filepath.Join(dir, "all.toml")
	writeFile(t, all, strings.Join(uncommented, "\n")+"\n")
	s := newSettings()
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	s.bindServe(fs)
	bindTokenFlags(fs, &tokenOptions{})
	if err := s.load(fs, []string{"--config", all}); err != nil {
		t.Fatalf("the sample's values do not load: %v", err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		switch f.DefValue {
		case "", "0", "0s", "false", "[]":
			return // no default shown: the line is an example
		}
		if got := f.Value.String(); got != f.DefValue {
			t.Errorf("dist/parley.toml shows %s = %s, but the default is %s", f.Name, got, f.DefValue)
		}
	})
}

// pendingSeries are series the dashboard graphs that a node exports only
// in some states: the plugin call series once a plugin has been called
// (the test node loads none). The test checks them only once a node
// exports them; every other series the dashboard queries must be exported.
var pendingSeries = map[string]bool{
	"parley_plugin_call_duration_seconds": true,
	"parley_plugin_call_failures_total":   true,
}

// seriesName matches the metric names in a PromQL expression.
var seriesName = regexp.MustCompile(`\b(?:parley|go|process)_[a-zA-Z0-9_]+\b`)

// dashboardSeries returns the metric families dist/grafana/parley.json
// queries (histogram _bucket/_sum/_count folded into their family).
func dashboardSeries(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "dist", "grafana", "parley.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Definition string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	out := map[string]bool{}
	for _, e := range exprs {
		for _, name := range seriesName.FindAllString(e, -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && (strings.HasSuffix(base, "_seconds") || strings.HasSuffix(base, "_bytes")) {
					name = base
				}
			}
			out[name] = true
		}
	}
	return out
}

// TestDashboardSeries: every series the Grafana dashboard queries is one a
// real node (a cluster of one, so that Raft series exist) exports on
// /metrics, parsed with the Prometheus text parser; the pending ones are
// checked once exported.
func TestDashboardSeries(t *testing.T) {
	n := soloCluster(t, filepath.Join(isolate(t), "d"))
	resp, err := http.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	queried := dashboardSeries(t)
	if len(queried) < 20 {
		t.Fatalf("the dashboard queries only %d series: %v", len(queried), queried)
	}
	for name := range queried {
		_, exported := families[name]
		switch {
		case exported:
		case pendingSeries[name]:
			t.Logf("%s: not exported by this node (no plugin called); its panel stays empty until then", name)
		default:
			t.Errorf("the dashboard queries %s, which a node does not export", name)
		}
	}
	for name := range pendingSeries {
		if !queried[name] {
			t.Errorf("pending series %s is not on the dashboard any more: drop it from pendingSeries", name)
		}
	}
	for name := range families {
		if strings.HasPrefix(name, "parley_") && !queried[name] {
			t.Logf("%s is exported but not on the dashboard", name)
		}
	}
}

// TestDistUnitAndImage guards the promises of the systemd unit and the
// Dockerfile (neither can run here): the hardening that matters is there,
// MemoryDenyWriteExecute is not (wazero compiles plugins to native code),
// and the image exposes the default ports.
func TestDistUnitAndImage(t *testing.T) {
	read := func(name string) []string {
		raw, err := os.ReadFile(filepath.Join("..", "..", "dist", name))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(raw), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		return lines
	}
	unit := strings.Join(read("parley.service"), "\n") + "\n"
	for _, want := range []string{
		"DynamicUser=yes", "StateDirectory=parley", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK", "LimitNOFILE=", "Restart=on-failure",
		"ExecReload=/bin/kill -HUP $MAINPID", "--data-dir /var/lib/parley",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("parley.service lacks %q", want)
		}
	}
	if strings.Contains(unit, "MemoryDenyWriteExecute") {
		t.Error("parley.service sets MemoryDenyWriteExecute: wazero could not compile plugins")
	}
	image := strings.Join(read("Dockerfile"), "\n")
	def := node.DefaultConfig()
	_, wt, _ := net.SplitHostPort(def.HTTP.WebTransportAddr)
	_, httpPort, _ := net.SplitHostPort(def.HTTP.HTTPAddr)
	_, raft, _ := net.SplitHostPort(def.Cluster.RaftAddr)
	expose := fmt.Sprintf("EXPOSE %s/tcp %s/udp %d/udp %s/tcp", httpPort, wt, def.Media.MediaPort, raft)
	for _, want := range []string{expose, "USER 65532", "make build"} {
		if !strings.Contains(image, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// soloCluster starts an in-process node that is a cluster of one, with its
// data in data, and waits until it leads.
func soloCluster(t *testing.T, data string) *node.Node {
	t.Helper()
	secret, err := raftstore.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.PluginDir = data, "none"
	cfg.HTTP.HTTPAddr, cfg.HTTP.WebTransportAddr, cfg.Media.MediaPort = "127.0.0.1:0", "", 0
	cfg.Cluster.Secret, cfg.Cluster.Listener, cfg.Cluster.NodeID = secret, ln, "solo"
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitClusterReady(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}
