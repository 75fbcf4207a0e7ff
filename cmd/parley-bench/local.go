package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
)

// startLocal runs a development node of this checkout inside the benchmark
// process, on free loopback ports, for profiling the server under load with
// --cpuprofile. Its CPU figures then include the clients' (one process);
// the profile tells them apart by the label side=server.
// It points cfg at the node and returns its shutdown.
func startLocal(ctx context.Context, cfg *config, log *slog.Logger) (func(), error) {
	return startNode(ctx, cfg, "127.0.0.1:0", log)
}

// startNode runs a development node on httpAddr and points cfg at it.
func startNode(ctx context.Context, cfg *config, httpAddr string, log *slog.Logger) (func(), error) {
	nc := node.DefaultConfig()
	dir, err := os.MkdirTemp("", "parley-bench-node-")
	if err != nil {
		return nil, err
	}
	nc.DataDir = dir
	nc.Dev = true
	nc.HTTP.HTTPAddr = httpAddr
	nc.HTTP.WebTransportAddr = "127.0.0.1:0"
	nc.Media.MediaPort = 0
	nc.Room.MaxParticipants = max(nc.Room.MaxParticipants, 10*(cfg.Publishers+cfg.Subscribers+1))
	// Goroutines inherit profiler labels from the goroutine that starts
	// them, so the node's (pion's included) carry side=server: profile
	// the server alone with pprof -tagfocus side=server.
	var n *node.Node
	pprof.Do(ctx, pprof.Labels("side", "server"), func(ctx context.Context) {
		if n, err = node.New(nc, log.With("part", "node")); err == nil {
			err = n.Start(ctx)
		}
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("--local: %w", err)
	}
	cfg.URL, cfg.TokenSecret, cfg.DevTokenURL, cfg.MetricsURL = n.URL(), "", "", ""
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = n.Shutdown(sctx)
		_ = os.RemoveAll(dir)
	}, nil
}

// startProfiles starts the CPU profile of --cpuprofile and returns what
// stops it and writes the allocation profile of --memprofile.
func startProfiles(cfg *config) (func() error, error) {
	var cpu *os.File
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, err
		}
		cpu = f
	}
	return func() error {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				return err
			}
		}
		if cfg.MemProfile == "" {
			return nil
		}
		f, err := os.Create(cfg.MemProfile)
		if err != nil {
			return err
		}
		runtime.GC()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	}, nil
}

// serve runs only a node on --url's address until ctx ends (--serve): a
// server of this build to profile while another parley-bench drives it.
func serve(ctx context.Context, cfg *config, out io.Writer, log *slog.Logger) error {
	u, err := url.Parse(cfg.baseURL())
	if err != nil {
		return err
	}
	stop, err := startNode(ctx, cfg, u.Host, log)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(out, "parley-bench: serving a dev node at %s (max %d participants per room); interrupt to stop\n",
		cfg.URL, 10*(cfg.Publishers+cfg.Subscribers+1))
	<-ctx.Done()
	return nil
}
