package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Modes of a run.
const (
	// modeFanout: per room, the publishers send and the subscribers only
	// receive (one publisher to many with --publishers 1).
	modeFanout = "fanout"
	// modeMeeting: per room, every publisher also receives every other
	// publisher's tracks, as in a video meeting.
	modeMeeting = "meeting"
)

// Transports for signaling.
const (
	transportWS = "ws"
	transportWT = "wt"
)

// config is one benchmark run's settings, filled from the command line.
type config struct {
	URL          string        `json:"url"`
	Transport    string        `json:"transport"`
	WTURL        string        `json:"wt_url,omitempty"`
	Mode         string        `json:"mode"`
	Rooms        int           `json:"rooms"`
	Publishers   int           `json:"publishers_per_room"`
	Subscribers  int           `json:"subscribers_per_room"`
	Audio        bool          `json:"audio"`
	Video        bool          `json:"video"`
	AudioBitrate int           `json:"audio_bitrate_bps"`
	VideoBitrate int           `json:"video_bitrate_bps"`
	VideoFPS     int           `json:"video_fps"`
	KeyframeIvl  time.Duration `json:"keyframe_interval_ns"`
	Duration     time.Duration `json:"duration_ns"`
	Warmup       time.Duration `json:"warmup_ns"`
	Ramp         time.Duration `json:"ramp_ns"`
	JoinTimeout  time.Duration `json:"join_timeout_ns"`
	Concurrency  int           `json:"join_concurrency"`
	RoomPrefix   string        `json:"room_prefix"`

	TokenSecret  string `json:"-"`
	DevTokenURL  string `json:"dev_token_url,omitempty"`
	MetricsURL   string `json:"metrics_url,omitempty"`
	MetricsToken string `json:"-"`
	ServerPID    int    `json:"server_pid,omitempty"`

	Search     bool          `json:"search"`
	SearchMin  int           `json:"search_min,omitempty"`
	MaxLossPct float64       `json:"max_loss_pct"`
	MaxP99     time.Duration `json:"max_p99_ns"`

	JSON       bool   `json:"-"`
	LogLevel   string `json:"-"`
	Local      bool   `json:"local,omitempty"`
	Serve      bool   `json:"-"`
	CPUProfile string `json:"-"`
	MemProfile string `json:"-"`
}

// defaultConfig returns the settings of a run with no flags.
func defaultConfig() config {
	return config{
		URL:          "http://127.0.0.1:7070",
		Transport:    transportWS,
		Mode:         modeFanout,
		Rooms:        1,
		Publishers:   1,
		Subscribers:  10,
		Audio:        true,
		Video:        true,
		AudioBitrate: 32_000,
		VideoBitrate: 500_000,
		VideoFPS:     30,
		KeyframeIvl:  3 * time.Second,
		Duration:     10 * time.Second,
		Warmup:       2 * time.Second,
		JoinTimeout:  30 * time.Second,
		Concurrency:  8,
		SearchMin:    10,
		MaxLossPct:   0.5,
		MaxP99:       50 * time.Millisecond,
		LogLevel:     "error",
	}
}

const usageHead = `parley-bench: load generator for Parley nodes.

It joins clients (the Go client SDK, sdk/client, over WebSocket or WebTransport
signaling) to one or more rooms of a node,
publishes synthetic Opus (50 packets/s) and VP8 RTP at the configured bitrates,
each payload carrying a send timestamp and a sequence number, and reports join
time, forwarding latency, packet loss, received bitrate and the server's CPU
and memory over the run.

Usage:
  parley-bench [flags]

Examples:
  # one publisher to 50 subscribers for 20 s against a local --dev node
  parley-bench --url http://127.0.0.1:7070 --subscribers 50 --duration 20s

  # a 10-person meeting (each publishes audio+video and receives the other 9)
  parley-bench --mode meeting --publishers 10 --subscribers 0 --token-secret $SECRET

  # the largest subscriber count with loss < 0.5 % and p99 latency < 50 ms
  parley-bench --search --maxClients 400 --server-pid $(pidof parley) --json

Tokens: --token-secret mints HS256 development tokens (the node's
--token-secret); otherwise tokens come from --dev-token-url, by default the
/v1/dev/token endpoint of --url (a node started with --dev).

Server CPU and memory come from the node's Prometheus /metrics
(process_cpu_seconds_total, process_resident_memory_bytes); when it is not
reachable, from /proc/PID of --server-pid. The report names the source.

Flags:
`

// newFlagSet binds every flag to cfg.
func newFlagSet(cfg *config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("parley-bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", cfg.URL, "node base URL (http[s]://host:port) or signaling URL (ws[s]://host:port/v1/signal)")
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, "signaling transport: ws (WebSocket) or wt (WebTransport over HTTP/3; media is WebRTC either way)")
	fs.StringVar(&cfg.WTURL, "wt-url", cfg.WTURL, "WebTransport signaling URL (https://host:port/v1/signal; default: what --url's /v1/info announces)")
	fs.StringVar(&cfg.Mode, "mode", cfg.Mode, "fanout: publishers send, subscribers receive; meeting: publishers also receive each other")
	fs.IntVar(&cfg.Rooms, "rooms", cfg.Rooms, "rooms to run at once")
	fs.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, "publishers per room")
	fs.IntVar(&cfg.Subscribers, "subscribers", cfg.Subscribers, "receive-only subscribers per room")
	fs.IntVar(&cfg.Subscribers, "maxClients", cfg.Subscribers, "alias of --subscribers (like spreed's benchmark client); the upper bound with --search")
	fs.BoolVar(&cfg.Audio, "audio", cfg.Audio, "each publisher sends an Opus track (50 packets/s)")
	fs.BoolVar(&cfg.Video, "video", cfg.Video, "each publisher sends a VP8 track")
	fs.IntVar(&cfg.AudioBitrate, "audio-bitrate", cfg.AudioBitrate, "Opus bitrate, bits/s")
	fs.IntVar(&cfg.VideoBitrate, "video-bitrate", cfg.VideoBitrate, "VP8 bitrate, bits/s")
	fs.IntVar(&cfg.VideoFPS, "video-fps", cfg.VideoFPS, "VP8 frames per second")
	fs.DurationVar(&cfg.KeyframeIvl, "keyframe-interval", cfg.KeyframeIvl, "periodic VP8 keyframe interval (keyframe requests are honoured too)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time, after joining and warm-up")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "time between the last join and the start of measurement")
	fs.DurationVar(&cfg.Ramp, "ramp", cfg.Ramp, "spread the subscribers' joins evenly over this time (0: as fast as --join-concurrency allows)")
	fs.DurationVar(&cfg.JoinTimeout, "join-timeout", cfg.JoinTimeout, "time allowed for every client to join and receive media")
	fs.IntVar(&cfg.Concurrency, "join-concurrency", cfg.Concurrency, "clients joining at once")
	fs.StringVar(&cfg.RoomPrefix, "room-prefix", cfg.RoomPrefix, "room name prefix (default: bench-<random>)")
	fs.StringVar(&cfg.TokenSecret, "token-secret", cfg.TokenSecret, "node token secret: mint HS256 development tokens locally")
	fs.StringVar(&cfg.DevTokenURL, "dev-token-url", cfg.DevTokenURL, "base URL of a --dev node whose /v1/dev/token issues tokens (default: --url)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", cfg.MetricsURL, "Prometheus endpoint of the node (default: --url + /metrics)")
	fs.StringVar(&cfg.MetricsToken, "metrics-token", cfg.MetricsToken, "bearer token for /metrics from a non-loopback address")
	fs.IntVar(&cfg.ServerPID, "server-pid", cfg.ServerPID, "server process id, read from /proc when /metrics is unavailable")
	fs.BoolVar(&cfg.Search, "search", cfg.Search, "search the largest subscriber count per room (up to --maxClients) within --max-loss and --max-p99")
	fs.IntVar(&cfg.SearchMin, "search-min", cfg.SearchMin, "first subscriber count --search tries")
	fs.Float64Var(&cfg.MaxLossPct, "max-loss", cfg.MaxLossPct, "--search criterion: packet loss below this percentage")
	fs.DurationVar(&cfg.MaxP99, "max-p99", cfg.MaxP99, "--search criterion: p99 forwarding latency below this")
	fs.BoolVar(&cfg.JSON, "json", cfg.JSON, "print the report as JSON instead of a table")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "client SDK log level: debug, info, warn, error")
	fs.BoolVar(&cfg.Local, "local", cfg.Local, "run a node of this build inside the benchmark process (ignores --url; for profiling)")
	fs.BoolVar(&cfg.Serve, "serve", cfg.Serve, "only run a node of this build on --url's address (dev mode, no clients, rooms of up to 10 x (publishers + subscribers + 1)) until interrupted, profiling it with --cpuprofile/--memprofile")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", cfg.CPUProfile, "write a CPU profile of the benchmark process (with --local: of the node too) to this file")
	fs.StringVar(&cfg.MemProfile, "memprofile", cfg.MemProfile, "write an allocation profile of the benchmark process to this file at the end")
	return fs
}

// validate reports the first invalid setting.
func (c *config) validate() error {
	switch {
	case c.Transport != transportWS && c.Transport != transportWT:
		return fmt.Errorf("--transport %q: want ws or wt", c.Transport)
	case c.Mode != modeFanout && c.Mode != modeMeeting:
		return fmt.Errorf("--mode %q: want fanout or meeting", c.Mode)
	case c.Rooms < 1:
		return errors.New("--rooms must be at least 1")
	case c.Publishers < 1:
		return errors.New("--publishers must be at least 1")
	case c.Subscribers < 0:
		return errors.New("--subscribers must not be negative")
	case c.Mode == modeFanout && c.Subscribers == 0:
		return errors.New("--mode fanout needs --subscribers > 0 (or use --mode meeting)")
	case c.Mode == modeMeeting && c.Publishers < 2 && c.Subscribers == 0:
		return errors.New("--mode meeting needs at least 2 publishers or a subscriber")
	case !c.Audio && !c.Video:
		return errors.New("at least one of --audio and --video must be on")
	case c.Audio && c.AudioBitrate < 8*headerLen*opusPPS:
		return fmt.Errorf("--audio-bitrate must be at least %d bits/s", 8*headerLen*opusPPS)
	case c.Video && (c.VideoFPS < 1 || c.VideoFPS > 120):
		return errors.New("--video-fps must be in 1..120")
	case c.Video && c.VideoBitrate < 8*headerLen*c.VideoFPS:
		return fmt.Errorf("--video-bitrate must be at least %d bits/s", 8*headerLen*c.VideoFPS)
	case c.Duration <= 0:
		return errors.New("--duration must be positive")
	case c.Warmup < 0 || c.Ramp < 0:
		return errors.New("--warmup and --ramp must not be negative")
	case c.Concurrency < 1:
		return errors.New("--join-concurrency must be at least 1")
	case c.Search && (c.SearchMin < 1 || c.SearchMin > c.Subscribers):
		return errors.New("--search needs 1 <= --search-min <= --maxClients")
	}
	if _, err := c.signalURL(); err != nil {
		return err
	}
	return nil
}

// signalURL returns the WebSocket signaling URL --url names.
func (c *config) signalURL() (string, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", fmt.Errorf("--url: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("--url %q: want http, https, ws or wss", c.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/signal"
	}
	return u.String(), nil
}

// baseURL returns the node's HTTP base URL (scheme and host of --url).
func (c *config) baseURL() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return c.URL
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path, u.RawQuery = "", ""
	return strings.TrimSuffix(u.String(), "/")
}

// metricsURL returns where the node's Prometheus metrics are.
func (c *config) metricsURL() string {
	if c.MetricsURL != "" {
		return c.MetricsURL
	}
	return c.baseURL() + "/metrics"
}

// receivers returns how many clients per room receive media.
func (c *config) receivers() int {
	if c.Mode == modeMeeting {
		return c.Publishers + c.Subscribers
	}
	return c.Subscribers
}

// tracksPerPublisher returns how many tracks each publisher sends.
func (c *config) tracksPerPublisher() int {
	n := 0
	if c.Audio {
		n++
	}
	if c.Video {
		n++
	}
	return n
}
