package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/parleyhq/parley/cmd/internal/logging"
	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core/protocol"
)

// envPrefix starts every environment variable Parley reads.
const envPrefix = "PARLEY_"

// settings is the effective configuration of one command, gathered from
// defaults, the config file, PARLEY_* variables and flags, in increasing
// precedence. Every flag has an environment variable (PARLEY_ + the flag
// name upper-cased with - as _) and a config-file key (the flag name).
type settings struct {
	node       node.Config
	configFile string
	logLevel   string
	logFormat  string
	logSpec    string        // --log: per-subsystem levels
	drain      time.Duration // --drain-timeout
	iceServers stringList
	sources    map[string]string // flag name -> "file", "env" or "flag"
	values     map[string]string // flag name -> effective value, after load
}

// stringList is a comma-separated flag value; each Set replaces the list.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// bindNode registers the flags every command that locates the data dir
// shares.
func (s *settings) bindCommon(fs *flag.FlagSet) {
	c := &s.node
	fs.StringVar(&s.configFile, "config", "", "config file (TOML, keys are flag names); default "+defaultConfigFile())
	fs.StringVar(&c.DataDir, "data-dir", "", "data directory (default "+node.DefaultDataDir()+")")
	fs.StringVar(&c.TokenSecret, "token-secret", "", "HMAC secret for development tokens (default: derived from the cluster secret, else generated in the data dir)")
	fs.StringVar(&c.Cluster.Secret, "cluster-secret", "", "cluster secret from 'parley cluster init' (default: the one in the data dir, if any)")
}

// bindCluster registers the cluster membership flags of serve.
func (s *settings) bindCluster(fs *flag.FlagSet) {
	c := &s.node.Cluster
	fs.StringVar(&c.NodeID, "node-id", "", "this node's id in the cluster (default: the id persisted in the data dir)")
	fs.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, "TCP address for the cluster's Raft traffic (mutual TLS)")
	fs.StringVar(&c.AdvertiseAddr, "advertise-addr", "", "Raft address other nodes dial (default: --raft-addr)")
	fs.StringVar(&c.Peers, "peers", "", `voters of a new cluster, "id=host:port,..." with this node, identical on every voter`)
	fs.Var((*stringList)(&c.Join), "join", "comma-separated Raft addresses of an existing cluster to join")
	fs.StringVar(&c.PublicURL, "public-url", "", "signaling URL advertised to clients redirected here (default: this node's own signal URL)")
	fs.DurationVar(&c.FailureGrace, "cluster-failure-grace", 0, "how long the leader waits for an unreachable node before moving its rooms (default 10s)")
}

// bindAdmin registers what a command needs to reach a node's admin API.
func (s *settings) bindAdmin(fs *flag.FlagSet) {
	s.bindCommon(fs)
	fs.StringVar(&s.node.HTTP.HTTPAddr, "http-addr", s.node.HTTP.HTTPAddr, "the node's HTTP address")
	fs.StringVar(&s.node.HTTP.AdminToken, "admin-token", "", "admin API token (default: the one in the data dir)")
}

// bindPlugins registers the plugin host's settings.
func (s *settings) bindPlugins(fs *flag.FlagSet) {
	c := &s.node
	fs.StringVar(&c.PluginDir, "plugin-dir", "", `plugin directory (<name>.wasm + optional <name>.json); default "plugins" beside the binary; "none" for no plugins`)
	fs.StringVar(&c.HTTP.AdminToken, "admin-token", "", "admin API token (default: generated in the data dir)")
	d := &c.Plugins.Defaults
	fs.Var(uint32Value{&d.MemoryPages}, "plugin-memory-pages", "default plugin memory cap in 64 KiB pages")
	fs.DurationVar(&d.CallTimeout, "plugin-call-timeout", d.CallTimeout, "default wall-clock deadline per plugin call")
	fs.IntVar(&d.PoolSize, "plugin-pool-size", d.PoolSize, "default instances per plugin")
	fs.IntVar(&d.MaxInput, "plugin-max-input", d.MaxInput, "default plugin input size in bytes")
	fs.IntVar(&d.MaxOutput, "plugin-max-output", d.MaxOutput, "default plugin output size in bytes")
}

// uint32Value is a flag.Value for a uint32.
type uint32Value struct{ p *uint32 }

func (v uint32Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*v.p), 10)
}

func (v uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return err
	}
	*v.p = uint32(n)
	return nil
}

// bindServe registers the flags of serve and config.
func (s *settings) bindServe(fs *flag.FlagSet) {
	s.bindCommon(fs)
	c := &s.node
	fs.BoolVar(&c.Dev, "dev", false, "development mode: any web origin, loopback media candidates, /v1/dev/token")
	fs.StringVar(&s.logLevel, "log-level", "info", "default log level: debug, info, warn, error")
	fs.StringVar(&s.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&s.logSpec, "log", "", `per-subsystem log levels, e.g. "raft=debug,plugins=info,*=warn" (a bare level or *= sets the default; subsystems: `+strings.Join(logging.Subsystems, ", ")+`); SIGHUP re-reads it`)
	fs.DurationVar(&s.drain, "drain-timeout", defaultDrainTimeout, "bound on a graceful stop after SIGTERM (drain, then shutdown); a second SIGTERM or SIGINT exits at once")
	fs.StringVar(&c.HTTP.HTTPAddr, "http-addr", c.HTTP.HTTPAddr, "HTTP/WebSocket listen address (port 0 picks one)")
	fs.Var((*stringList)(&c.HTTP.AllowedOrigins), "allowed-origins", "comma-separated web origin host patterns allowed to connect")
	fs.StringVar(&c.HTTP.TLSCert, "tls-cert", "", "TLS certificate file for HTTPS/WSS and HTTP/3 (default: HTTP/3 generates a short-lived self-signed one)")
	fs.StringVar(&c.HTTP.TLSKey, "tls-key", "", "TLS key file for HTTPS/WSS and HTTP/3")
	fs.StringVar(&c.HTTP.WebTransportAddr, "webtransport-addr", c.HTTP.WebTransportAddr, "UDP listen address for WebTransport signaling over HTTP/3 (port 0 picks one, empty disables)")
	fs.Var((*stringList)(&c.HTTP.CertHosts), "cert-hosts", "comma-separated extra DNS names/IPs for the generated HTTP/3 certificate")
	fs.StringVar(&c.HTTP.MetricsToken, "metrics-token", "", "bearer token for /metrics from non-loopback scrapers")
	s.bindPlugins(fs)
	fs.StringVar(&c.Media.ListenIP, "media-ip", c.Media.ListenIP, "IP the media UDP socket binds (empty: all)")
	fs.IntVar(&c.Media.MediaPort, "media-port", c.Media.MediaPort, "UDP port for all media (0 picks one)")
	fs.Var((*stringList)(&c.Media.PublicIPs), "public-ip", "comma-separated public IPs announced for media (NAT 1:1)")
	fs.BoolVar(&c.Media.IncludeLoopback, "media-loopback", c.Media.IncludeLoopback, "offer loopback media candidates")
	fs.IntVar(&c.Media.PacketCache, "packet-cache", c.Media.PacketCache, "packets kept per video track for NACK (power of two)")
	fs.DurationVar(&c.Media.KeyframeThrottle, "keyframe-throttle", c.Media.KeyframeThrottle, "minimum interval between keyframe requests per track")
	fs.Var(&s.iceServers, "ice-servers", "comma-separated STUN/TURN URLs handed to clients")
	fs.IntVar(&c.Room.MaxParticipants, "max-participants", c.Room.MaxParticipants, "participants per room")
	fs.IntVar(&c.Room.MaxTracks, "max-tracks", c.Room.MaxTracks, "published tracks per participant")
	fs.IntVar(&c.Room.MaxDataPayload, "max-data-payload", c.Room.MaxDataPayload, "bytes per data message payload")
	fs.Int64Var(&c.Signal.MaxMessageSize, "max-message-size", c.Signal.MaxMessageSize, "bytes per signaling message")
	fs.Float64Var(&c.Signal.RateLimit, "rate-limit", c.Signal.RateLimit, "signaling requests per second per connection")
	fs.IntVar(&c.Signal.RateBurst, "rate-burst", c.Signal.RateBurst, "signaling request burst per connection")
	fs.DurationVar(&c.Signal.PingInterval, "ping-interval", c.Signal.PingInterval, "client keep-alive interval")
	fs.DurationVar(&c.Signal.ResumeGrace, "resume-grace", c.Signal.ResumeGrace, "how long a dropped session may resume")
	s.bindCluster(fs)
	s.bindWebhooks(fs)
	s.bindAPI(fs)
}

func newSettings() *settings {
	return &settings{node: node.DefaultConfig(), sources: map[string]string{}}
}

// load applies the config file, the environment and args to fs, in that
// order of increasing precedence.
func (s *settings) load(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil { // first pass: find --config
		return err
	}
	var explicit []string
	fs.Visit(func(f *flag.Flag) { explicit = append(explicit, f.Name) })
	if s.configFile == "" {
		s.configFile = os.Getenv(envPrefix + "CONFIG")
	}
	if err := s.applyFile(fs); err != nil {
		return err
	}
	if err := s.applyEnv(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil { // flags win
		return err
	}
	for _, name := range explicit {
		s.sources[name] = "flag"
	}
	s.values = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { s.values[f.Name] = f.Value.String() })
	for _, u := range s.iceServers {
		s.node.Signal.ICEServers = append(s.node.Signal.ICEServers, protocol.ICEServer{URLs: []string{u}})
	}
	return nil
}

func defaultConfigFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "parley", "parley.toml")
}

// applyFile reads the config file: explicit, or the default one if present.
func (s *settings) applyFile(fs *flag.FlagSet) error {
	path, explicit := s.configFile, s.configFile != ""
	if !explicit {
		path = defaultConfigFile()
	}
	if path == "" {
		return nil
	}
	var values map[string]any
	if _, err := toml.DecodeFile(path, &values); err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config file %s: %w", path, err)
	}
	s.configFile = path
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || !allFlags()[k] {
			return fmt.Errorf("config file %s: unknown key %q (keys are the flag names of parley serve)", path, k)
		}
		if fs.Lookup(k) == nil {
			continue // a setting of another command
		}
		if err := fs.Set(k, tomlString(values[k])); err != nil {
			return fmt.Errorf("config file %s: key %q: %w", path, k, err)
		}
		s.sources[k] = "file"
	}
	return nil
}

func tomlString(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, e := range list {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// applyEnv applies PARLEY_* variables; an unknown PARLEY_ variable is an
// error so typos do not pass silently.
func (s *settings) applyEnv(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("environment %s: %w", name, serr)
			}
			s.sources[f.Name] = "env"
		}
	})
	if err != nil {
		return err
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !knownEnv()[name] {
			return fmt.Errorf("environment %s: not a Parley setting (see parley serve --help)", name)
		}
	}
	return nil
}

// allFlags lists the settings of every command, by flag name.
func allFlags() map[string]bool {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	s := newSettings()
	s.bindServe(fs)
	bindTokenFlags(fs, &tokenOptions{})
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[f.Name] = true })
	return known
}

// knownEnv lists every PARLEY_ variable any command reads.
func knownEnv() map[string]bool {
	known := map[string]bool{envPrefix + "CONFIG": true}
	for name := range allFlags() {
		known[envName(name)] = true
	}
	return known
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseLogSpec parses --log over the default level --log-level.
func (s *settings) parseLogSpec() (logging.Spec, error) {
	def, err := logging.ParseLevel(s.logLevel)
	if err != nil {
		return logging.Spec{}, fmt.Errorf("log-level: %w", err)
	}
	spec, err := logging.ParseSpec(s.logSpec, def)
	if err != nil {
		return logging.Spec{}, fmt.Errorf("log: %w", err)
	}
	return spec, nil
}

// logger returns the command's logger on stderr and the levels it follows
// (which SIGHUP replaces).
func (s *settings) logger() (*slog.Logger, *logging.Levels, error) {
	spec, err := s.parseLogSpec()
	if err != nil {
		return nil, nil, err
	}
	levels := logging.NewLevels(spec)
	log, err := logging.New(os.Stderr, s.logFormat, levels)
	if err != nil {
		return nil, nil, err
	}
	return log, levels, nil
}
