// Command parley-bench is a load generator for Parley nodes: it joins
// publishers and subscribers to rooms with the Go client SDK, sends synthetic
// Opus and VP8 RTP stamped with send times and sequence numbers, and reports
// join time, forwarding latency, loss, bitrate and the server's CPU and
// memory. Run it with --help for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/parleyhq/parley/core"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "parley-bench:", err)
		os.Exit(1)
	}
}

// run parses args, runs the benchmark (or the search) and prints the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultConfig()
	fs := newFlagSet(&cfg, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v (see --help)", fs.Args())
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.RoomPrefix == "" {
		cfg.RoomPrefix = "bench-" + strings.ToLower(core.NewSecret(4)) + "-"
	}
	log, err := newLogger(cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	if cfg.Local {
		stopNode, err := startLocal(ctx, &cfg, log)
		if err != nil {
			return err
		}
		defer stopNode()
	}
	stopProfiles, err := startProfiles(&cfg)
	if err != nil {
		return err
	}
	defer func() {
		if perr := stopProfiles(); perr != nil {
			fmt.Fprintln(stderr, "parley-bench: profile:", perr)
		}
	}()
	if cfg.Serve {
		return serve(ctx, &cfg, stderr, log)
	}
	probe := newServerProbe(ctx, cfg.metricsURL(), cfg.MetricsToken, cfg.ServerPID)
	if probe.source != sourceMetrics {
		fmt.Fprintf(stderr, "parley-bench: server figures from %s (/metrics: %v)\n", probe.source, probe.lastErr)
	}
	if cfg.Search {
		res, err := search(ctx, &cfg, probe, log, stderr)
		if err != nil {
			return err
		}
		if cfg.JSON {
			return writeJSON(stdout, res)
		}
		return res.writeTable(stdout)
	}
	rep, err := runOnce(ctx, &cfg, cfg.Subscribers, "", probe, log)
	if err != nil {
		return err
	}
	if cfg.JSON {
		return writeJSON(stdout, rep)
	}
	return rep.writeTable(stdout)
}

// runOnce runs one benchmark with subs subscribers per room.
func runOnce(ctx context.Context, cfg *config, subs int, tag string, probe *serverProbe, log *slog.Logger) (*Report, error) {
	b, err := newBench(cfg, subs, tag, probe, log)
	if err != nil {
		return nil, err
	}
	return b.run(ctx)
}

// newLogger returns the SDK's logger at the given level, on stderr.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
