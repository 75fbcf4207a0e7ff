package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/sdk/client"
)

// tokenSource returns a token for identity in room.
type tokenSource func(ctx context.Context, room, identity string) (string, error)

// newTokenSource mints tokens with --token-secret, or fetches them from a
// --dev node's /v1/dev/token.
func newTokenSource(cfg *config) tokenSource {
	if cfg.TokenSecret != "" {
		secret := []byte(cfg.TokenSecret)
		return func(_ context.Context, room, identity string) (string, error) {
			claims := core.Claims{Identity: identity, Room: room, Grants: core.AllGrants}
			return devtoken.Mint(secret, claims, 2*time.Hour, time.Now())
		}
	}
	base := cfg.DevTokenURL
	if base == "" {
		base = cfg.baseURL()
	}
	endpoint := strings.TrimSuffix(base, "/")
	if !strings.HasSuffix(endpoint, "/v1/dev/token") {
		endpoint += "/v1/dev/token"
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	return func(ctx context.Context, room, identity string) (string, error) {
		u := endpoint + "?room=" + url.QueryEscape(room) + "&identity=" + url.QueryEscape(identity)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", fmt.Errorf("dev token: %w (is the node running with --dev? else pass --token-secret)", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("dev token: %s: %s (is the node running with --dev? else pass --token-secret)",
				resp.Status, strings.TrimSpace(string(body)))
		}
		var out struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
			return "", fmt.Errorf("dev token: unexpected answer %q", body)
		}
		return out.Token, nil
	}
}

// newClientAPI builds the pion API the benchmark's clients use: pion's
// default codecs, loopback-friendly ICE, and the interceptors a browser
// receiver needs (NACK generation, receiver reports) plus NACK responses for
// publishers. It leaves out pion's stats and TWCC interceptors to keep the
// clients' share of the machine small.
func newClientAPI() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return nil, err
	}
	resp, err := nack.NewResponderInterceptor()
	if err != nil {
		return nil, err
	}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, err
	}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(gen)
	ir.Add(resp)
	ir.Add(rr)
	ir.Add(sr)
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// participant is one benchmark client: a publisher, a receiver, or both.
type participant struct {
	name    string
	room    string
	c       *client.Client
	recv    *receiver // nil when it does not receive
	pubs    []*pubTrack
	readers sync.WaitGroup

	ready      chan struct{} // closed when Connect returned
	mu         sync.Mutex
	subscribed map[string]bool // track ids asked for
}

// joinParams describe a participant to join.
type joinParams struct {
	room, name string
	receive    bool
	api        *webrtc.API
	log        *slog.Logger
	tokens     tokenSource
	sig        *signaling
	clk        clock
	measuring  func(sentNS int64) bool // whether a packet sent then is measured
}

// join connects a participant; receivers start reading every track they get.
func join(ctx context.Context, p joinParams) (*participant, error) {
	tok, err := p.tokens(ctx, p.room, p.name)
	if err != nil {
		return nil, err
	}
	// Receivers subscribe explicitly once Connect has returned rather than
	// with auto_subscribe: the SDK answers a sub_offer that arrives before
	// Connect returns with "client not connected" and the offer then stays
	// outstanding, so such a receiver would never get media.
	opts := append(p.sig.options(), client.WithAPI(p.api), client.WithLogger(p.log), client.WithAutoSubscribe(false))
	c, err := client.New(p.sig.url, tok, opts...)
	if err != nil {
		return nil, err
	}
	pt := &participant{name: p.name, room: p.room, c: c, subscribed: make(map[string]bool), ready: make(chan struct{})}
	if p.receive {
		pt.recv = &receiver{joinStartNS: p.clk.now()}
		c.OnTrack(func(t *client.RemoteTrack) {
			rt := pt.recv.addTrack()
			pt.readers.Add(1)
			go func() {
				defer pt.readers.Done()
				readTrack(t.Track(), rt, pt.recv, p.clk, p.measuring)
			}()
		})
		c.OnTrackPublished(func(t client.TrackInfo) {
			go func() {
				select {
				case <-pt.ready:
					pt.subscribe(t)
				case <-c.Done():
				}
			}()
		})
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	close(pt.ready)
	if p.receive {
		for _, other := range c.Participants() {
			for _, t := range other.Tracks {
				pt.subscribe(t)
			}
		}
	}
	return pt, nil
}

// subscribe asks for another participant's track once.
func (pt *participant) subscribe(t client.TrackInfo) {
	if t.ParticipantID == pt.c.LocalParticipant().ID {
		return
	}
	pt.mu.Lock()
	done := pt.subscribed[t.ID]
	pt.subscribed[t.ID] = true
	pt.mu.Unlock()
	if done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pt.c.Subscribe(ctx, t.ID); err != nil {
		pt.c.Close() // counted as a receiver without media
	}
}

// readTrack reads one forwarded track until it ends, recording every
// benchmark packet.
func readTrack(tr *webrtc.TrackRemote, rt *recvTrack, r *receiver, clk clock, measuring func(int64) bool) {
	buf := make([]byte, 1500)
	var h rtp.Header
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		now := clk.now()
		hl, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		s, ok := readStamp(buf[hl:n])
		if !ok {
			continue
		}
		r.firstMediaNS.CompareAndSwap(0, now)
		rt.record(s, n, now, measuring(s.sentNS))
	}
}

// publish adds the configured tracks and returns their senders, not yet
// running. first is the index of the first track.
func (pt *participant) publish(ctx context.Context, cfg *config, first uint32, clk clock) error {
	var mimes []string
	if cfg.Audio {
		mimes = append(mimes, webrtc.MimeTypeOpus)
	}
	if cfg.Video {
		mimes = append(mimes, webrtc.MimeTypeVP8)
	}
	for i, mime := range mimes {
		lt, err := pt.c.PublishRTP(ctx, mime)
		if err != nil {
			return fmt.Errorf("%s: %w", pt.name, err)
		}
		pt.pubs = append(pt.pubs, newPubTrack(first+uint32(i), lt, cfg, clk))
	}
	return nil
}

// close leaves the room (or just closes, when the context is done) and waits
// for the track readers.
func (pt *participant) close(ctx context.Context) {
	if err := pt.c.Leave(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		_ = pt.c.Close()
	}
	pt.readers.Wait()
}
