package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/parleyhq/parley/sdk/client"
)

// signaling is how the benchmark's clients reach the node's signaling.
type signaling struct {
	url        string
	transport  client.Transport
	certHashes [][]byte // WebTransport: the dev certificate's pins, if published
}

// options returns the client options for this signaling.
func (s *signaling) options() []client.Option {
	opts := []client.Option{client.WithTransport(s.transport)}
	if len(s.certHashes) > 0 {
		opts = append(opts, client.WithCertHash(s.certHashes...))
	}
	return opts
}

// resolveSignaling finds the signaling URL of the configured transport:
// --url for WebSocket; for WebTransport --wt-url, or the webtransport_url the
// node's /v1/info announces, with the certificate hashes of /v1/cert-hash
// (a development node's generated certificate) pinned when published.
func resolveSignaling(ctx context.Context, cfg *config) (*signaling, error) {
	if cfg.Transport == transportWS {
		u, err := cfg.signalURL()
		if err != nil {
			return nil, err
		}
		return &signaling{url: u, transport: client.TransportWebSocket}, nil
	}
	s := &signaling{url: cfg.WTURL, transport: client.TransportWebTransport}
	if s.url == "" {
		var info struct {
			WebTransportURL string `json:"webtransport_url"`
		}
		if err := getJSON(ctx, cfg.baseURL()+"/v1/info", &info); err != nil {
			return nil, fmt.Errorf("--transport wt: find the WebTransport URL (or pass --wt-url): %w", err)
		}
		if info.WebTransportURL == "" {
			return nil, fmt.Errorf("--transport wt: %s/v1/info announces no WebTransport URL (is it disabled?)", cfg.baseURL())
		}
		s.url = info.WebTransportURL
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if hashes, err := client.FetchCertHashes(hctx, cfg.baseURL()+"/v1/cert-hash"); err == nil {
		s.certHashes = hashes
	}
	return s, nil
}

// getJSON decodes the JSON answer of a GET.
func getJSON(ctx context.Context, url string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}
