package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/core/signal"
	"github.com/parleyhq/parley/edge/api"
)

// Info is what GET /v1/info reports.
type Info struct {
	Name      string         `json:"name"`
	Version   string         `json:"version"`
	NodeID    string         `json:"node_id"`
	Features  []string       `json:"features"`
	SignalURL string         `json:"signal_url"`
	HTTPAddr  string         `json:"http_addr"`
	MediaPort int            `json:"media_port"`
	Dev       bool           `json:"dev"`
	Uptime    string         `json:"uptime"`
	Rooms     int            `json:"rooms"`
	Sessions  int            `json:"sessions"`
	Extra     map[string]any `json:"extra,omitempty"`
	// WebTransportURL is the HTTP/3 signaling URL; CertHash describes its
	// certificate (pass CertHash.Hashes as serverCertificateHashes when
	// CertHash.Pin). Both are absent when WebTransport is off.
	WebTransportURL string    `json:"webtransport_url,omitempty"`
	CertHash        *CertInfo `json:"cert_hash,omitempty"`
}

// Deps are what the HTTP face serves. Signal and Info are required.
type Deps struct {
	Signal *signal.Server
	// Info fills in the node's description; the server adds the addresses.
	Info func() Info
	// DevToken mints a development token; served only with Config.Dev.
	DevToken func(room, identity string) (string, error)
	// Metrics serves GET /metrics (Prometheus text format) when not nil.
	Metrics http.Handler
	// SigningKeys, when not nil, serves the public halves of the webhook
	// signing keys at GET /pki (PKIHandler).
	SigningKeys SigningKeySource
	// Plugins serves the /v1/admin/plugins API when not nil.
	Plugins PluginAdmin
	// Cluster serves the /v1/admin/cluster API when not nil.
	Cluster ClusterAdmin
	// API, when not nil, serves the server API (edge/api) with these
	// parts; the admin token is Config.AdminToken.
	API *api.Deps
	Log *slog.Logger
}

// Server is the HTTP listener.
type Server struct {
	cfg      Config
	sig      *signal.Server
	deps     Deps
	log      *slog.Logger
	http     *http.Server
	started  time.Time
	draining atomic.Bool

	ctx    context.Context // ends when Shutdown begins; parent of sessions
	cancel context.CancelFunc

	mu   sync.Mutex
	ln   net.Listener
	done chan struct{}

	certs *certSource // HTTP/3 certificate; nil when WebTransport is off
	wt    *wtListener
	api   *api.Server // nil without Deps.API
}

// New returns an HTTP server; Start listens.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Signal == nil || deps.Info == nil {
		return nil, errors.New("edge: deps.Signal and deps.Info are required")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, sig: deps.Signal, deps: deps, log: deps.Log, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.newWebTransport(); err != nil {
		return nil, err
	}
	if deps.API != nil {
		ad := *deps.API
		ad.AdminToken, ad.Log = cfg.AdminToken, deps.Log.With("part", "api")
		acfg := cfg.API
		if acfg == (api.Config{}) {
			acfg = api.DefaultConfig()
		}
		var err error
		if s.api, err = api.New(acfg, ad); err != nil {
			return nil, fmt.Errorf("edge: %w", err)
		}
	}
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(deps.Log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /v1/info", s.handleInfo)
	mux.HandleFunc("GET /api/v1/welcome", s.handleInfo)
	mux.HandleFunc("GET /v1/signal", s.handleSignal)
	if s.deps.SigningKeys != nil {
		mux.Handle("/pki", PKIHandler(s.deps.SigningKeys))
	}
	if s.deps.Metrics != nil {
		mux.HandleFunc("GET /metrics", s.handleMetrics)
	}
	s.adminRoutes(mux)
	s.clusterRoutes(mux)
	if s.api != nil {
		s.api.Register(mux)
	}
	mux.HandleFunc("GET /v1/cert-hash", s.handleCertHash)
	if s.cfg.Dev && s.deps.DevToken != nil {
		mux.HandleFunc("GET /v1/dev/token", s.handleDevToken)
	}
	mux.HandleFunc("GET /{$}", s.handleIndex)
	registerWeb(mux)
	return mux
}

// Start listens and serves in the background; it returns once the listener
// is open, so Addr is valid.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("edge: listen %s: %w", s.cfg.HTTPAddr, err)
	}
	if err := s.startWebTransport(); err != nil {
		_ = ln.Close()
		return err
	}
	s.mu.Lock()
	s.ln, s.started = ln, time.Now()
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		var err error
		if s.cfg.TLSCert != "" {
			err = s.http.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the listening address (with the chosen port).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL returns the base URL, http://host:port.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + s.Addr().String()
}

// SignalURL returns the WebSocket signaling URL.
func (s *Server) SignalURL() string {
	scheme := "ws"
	if s.cfg.TLSCert != "" {
		scheme = "wss"
	}
	return scheme + "://" + s.Addr().String() + "/v1/signal"
}

// Shutdown stops accepting, tells signaling clients the server is going
// away, and waits for handlers to finish or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.sig.Shutdown(ctx)
	s.cancel()
	if herr := s.http.Shutdown(ctx); herr != nil && err == nil {
		err = herr
	}
	s.closeWebTransport(ctx)
	s.mu.Lock()
	started := s.ln != nil
	s.mu.Unlock()
	if started {
		select {
		case <-s.done:
		case <-ctx.Done():
		}
	}
	return err
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	info := s.deps.Info()
	info.Name = "parley"
	info.SignalURL = s.SignalURL()
	info.HTTPAddr = s.Addr().String()
	info.Dev = s.cfg.Dev
	info.Uptime = time.Since(s.started).Round(time.Second).String()
	info.Sessions = s.sig.Sessions()
	info.WebTransportURL = s.WebTransportURL()
	if ci, ok := s.CertInfo(); ok {
		info.CertHash = &ci
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleDevToken(w http.ResponseWriter, r *http.Request) {
	room, identity := r.URL.Query().Get("room"), r.URL.Query().Get("identity")
	if room == "" || identity == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "room and identity query parameters are required"})
		return
	}
	tok, err := s.deps.DevToken(room, identity)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok, "signal_url": s.SignalURL(), "webtransport_url": s.WebTransportURL()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
