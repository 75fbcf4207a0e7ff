package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/parleyhq/parley/cmd/internal/node"
)

// infoLines is a titled list of "name: value" lines printed aligned.
type infoLines struct {
	title string
	rows  [][2]string
}

func (l *infoLines) add(name, format string, args ...any) {
	l.rows = append(l.rows, [2]string{name, fmt.Sprintf(format, args...)})
}

func (l *infoLines) write(w io.Writer) error {
	width := 0
	for _, r := range l.rows {
		width = max(width, len(r[0]))
	}
	var b bytes.Buffer
	b.WriteString(l.title + "\n")
	for _, r := range l.rows {
		fmt.Fprintf(&b, "  %-*s  %s\n", width+1, r[0]+":", r[1])
	}
	_, err := w.Write(b.Bytes())
	return err
}

// printServeInfo is `parley serve --info`: what a node started with s
// would run with, without starting it (nothing is created on disk).
func printServeInfo(s *settings, w io.Writer) error {
	c := s.node
	p := c.Paths()
	spec, _ := s.parseLogSpec()
	l := &infoLines{title: fmt.Sprintf("Parley %s: the node this configuration would run (not serving)", node.Version)}
	l.add("config file", "%s", orNone(s.configFile))
	l.add("node id", "%s", plannedNodeID(c))
	tls := c.HTTP.TLSCert != ""
	l.add("http", "%s%s", scheme("http", tls), portNote(c.HTTP.HTTPAddr))
	l.add("signal", "%s%s/v1/signal", scheme("ws", tls), c.HTTP.HTTPAddr)
	if c.HTTP.WebTransportAddr == "" {
		l.add("webtransport", "off")
	} else {
		l.add("webtransport", "udp %s", portNote(c.HTTP.WebTransportAddr))
	}
	media := fmt.Sprintf("udp/%d", c.Media.MediaPort)
	if c.Media.MediaPort == 0 {
		media = "udp, a free port picked at start"
	}
	if len(c.Media.PublicIPs) > 0 {
		media += ", announced as " + strings.Join(c.Media.PublicIPs, ", ")
	}
	l.add("media", "%s", media)
	if c.Clustered() {
		cc := c.Cluster
		l.add("cluster", "raft %s, peers %s, join %s", cc.RaftAddr, orNone(cc.Peers), orNone(strings.Join(cc.Join, ",")))
	} else {
		l.add("cluster", "none (a single node)")
	}
	l.add("data dir", "%s", p.DataDir)
	l.add("  node id file", "%s", p.NodeIDFile)
	l.add("  token secret", "%s", secretSource(c.TokenSecret, p.SecretFile))
	l.add("  admin token", "%s", secretSource(c.HTTP.AdminToken, p.AdminFile))
	l.add("  plugin cache", "%s", p.PluginCache)
	if c.Clustered() {
		l.add("  raft", "%s", p.RaftDir)
	}
	l.add("plugin dir", "%s", plannedPlugins(c.PluginDir))
	l.add("log", "%s (%s on stderr)", spec.String(), s.logFormat)
	l.add("drain timeout", "%s", s.drain)
	l.add("dev mode", "%t", c.Dev)
	delete(s.sources, "info")
	l.add("set by", "%s", setBy(s.sources))
	return l.write(w)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func scheme(s string, tls bool) string {
	if tls {
		s += "s"
	}
	return s + "://"
}

func portNote(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return addr + " (a free port picked at start)"
	}
	return addr
}

// plannedNodeID says which id the node would have, reading (never
// creating) the data dir.
func plannedNodeID(c node.Config) string {
	if c.Cluster.NodeID != "" {
		return c.Cluster.NodeID + " (--node-id)"
	}
	b, err := os.ReadFile(c.Paths().NodeIDFile)
	if err != nil {
		return "not created yet (made at first start)"
	}
	return strings.TrimSpace(string(b)) + " (from the data dir)"
}

func secretSource(configured, file string) string {
	if configured != "" {
		return "set in the configuration (redacted)"
	}
	if _, err := os.Stat(file); err == nil {
		return file
	}
	return file + " (created at first start)"
}

// plannedPlugins names the plugin directory and the plugins in it.
func plannedPlugins(dir string) string {
	if dir == "none" {
		return "none (no plugins)"
	}
	if dir == "" {
		if dir = node.DefaultPluginDir(); dir == "" {
			return "none (no plugins beside the binary)"
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if err != nil || len(files) == 0 {
		return dir + " (no .wasm files)"
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".wasm")
	}
	return fmt.Sprintf("%s (%s)", dir, strings.Join(names, ", "))
}

func setBy(sources map[string]string) string {
	if len(sources) == 0 {
		return "defaults only"
	}
	names := make([]string, 0, len(sources))
	for k := range sources {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + sources[k]
	}
	return strings.Join(parts, " ")
}

// runInfo is `parley info`: it asks a running node (GET /v1/info, and the
// admin API with the admin token for its plugins and data dir) and prints
// the answer.
func runInfo(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("info", "Print a running node's version, id, addresses, data dir, cluster role, plugins and uptime.", stderr)
	s.bindAdmin(fs)
	asJSON := fs.Bool("json", false, "print the node's answers as JSON")
	if err := s.load(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	api, err := newAdminClient(s)
	if err != nil {
		return err
	}
	var info nodeInfo
	if err := api.getJSON("/v1/info", &info.Info); err != nil {
		return err
	}
	var admin pluginList
	adminErr := api.getJSON("/v1/admin/plugins", &admin)
	if *asJSON {
		out := map[string]any{"info": info.Info}
		if adminErr == nil {
			out["admin"] = admin
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else if err := info.lines(admin, adminErr).write(stdout); err != nil {
		return err
	}
	if adminErr != nil {
		return fmt.Errorf("plugins and data dir need the admin API: %w", adminErr)
	}
	return nil
}

// nodeInfo is the part of GET /v1/info that info prints.
type nodeInfo struct {
	Info struct {
		Version         string         `json:"version"`
		NodeID          string         `json:"node_id"`
		SignalURL       string         `json:"signal_url"`
		HTTPAddr        string         `json:"http_addr"`
		WebTransportURL string         `json:"webtransport_url"`
		MediaPort       int            `json:"media_port"`
		Dev             bool           `json:"dev"`
		Uptime          string         `json:"uptime"`
		Rooms           int            `json:"rooms"`
		Sessions        int            `json:"sessions"`
		Features        []string       `json:"features"`
		Extra           map[string]any `json:"extra"`
	}
}

// pluginList is GET /v1/admin/plugins.
type pluginList struct {
	Dir     string `json:"dir"`
	DataDir string `json:"data_dir"`
	Cluster bool   `json:"cluster"`
	Plugins []struct {
		Name    string
		Version string
		Hooks   []string
		Stats   struct{ Calls, Failures uint64 }
	} `json:"plugins"`
}

func (ni nodeInfo) lines(admin pluginList, adminErr error) *infoLines {
	in := ni.Info
	l := &infoLines{title: fmt.Sprintf("Parley %s, node %s", in.Version, in.NodeID)}
	l.add("uptime", "%s", in.Uptime)
	l.add("http", "%s", in.HTTPAddr)
	l.add("signal", "%s", in.SignalURL)
	l.add("webtransport", "%s", orNone(in.WebTransportURL))
	l.add("media", "udp/%d", in.MediaPort)
	l.add("rooms", "%d (%d signaling sessions)", in.Rooms, in.Sessions)
	l.add("cluster", "%s", clusterRole(in.Extra))
	l.add("dev mode", "%t", in.Dev)
	if adminErr != nil {
		l.add("data dir", "unknown (%v)", adminErr)
		l.add("plugins", "unknown (%v)", adminErr)
		return l
	}
	l.add("data dir", "%s", orNone(admin.DataDir))
	src := "plugin dir " + orNone(admin.Dir)
	if admin.Cluster {
		src += " and the cluster's plugin set"
	}
	l.add("plugins", "%d loaded (%s)", len(admin.Plugins), src)
	for _, p := range admin.Plugins {
		l.add("  "+p.Name, "version %s, hooks %s, %d calls, %d failures", orNone(p.Version), strings.Join(p.Hooks, ","), p.Stats.Calls, p.Stats.Failures)
	}
	return l
}

// clusterRole describes extra.cluster of /v1/info.
func clusterRole(extra map[string]any) string {
	c, ok := extra["cluster"].(map[string]any)
	if !ok {
		return "none (a single node)"
	}
	return fmt.Sprintf("%v, leader %v, term %v, %v nodes", strings.ToLower(fmt.Sprint(c["state"])), c["leader"], c["term"], c["nodes"])
}

// getJSON GETs path with the admin token and decodes the JSON answer.
func (a *adminClient) getJSON(path string, v any) error {
	var b bytes.Buffer
	if err := a.do("GET", path, nil, "", &b); err != nil {
		return err
	}
	if err := json.Unmarshal(b.Bytes(), v); err != nil {
		return fmt.Errorf("GET %s: %w", path, errors.Join(errors.New("not the JSON of a Parley node"), err))
	}
	return nil
}
