package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
)

// shutdownTimeout bounds a graceful stop.
const shutdownTimeout = 15 * time.Second

func runServe(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("serve", "Run a Parley node. With no settings it serves a working local node on 127.0.0.1:7070.", stderr)
	s.bindServe(fs)
	if err := s.load(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	log, err := s.logger()
	if err != nil {
		return err
	}
	n, err := node.New(s.node, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := n.Start(ctx); err != nil {
		_ = n.Shutdown(context.Background())
		return err
	}
	fmt.Fprintf(stdout, "Parley %s is running.\n  open:    %s\n  signal:  %s\n  media:   udp/%d\n  data:    %s\n",
		node.Version, n.URL(), n.SignalURL(), n.MediaPort(), s.node.Paths().DataDir)
	if wt := n.WebTransportURL(); wt != "" {
		fmt.Fprintf(stdout, "  wt:      %s (certificate hash at %s/v1/cert-hash)\n", wt, n.URL())
	}
	if s.node.Dev {
		fmt.Fprintf(stdout, "  dev:     tokens at %s/v1/dev/token?room=demo&identity=alice\n", n.URL())
	}
	fmt.Fprintf(stdout, "Mint a token: parley token --room demo --identity alice. Stop with Ctrl-C.\n")
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if n.PluginDir() == "" {
				log.Info("SIGHUP: no plugin directory to reload")
				continue
			}
			ch, err := n.ReloadPlugins(ctx)
			log.Info("SIGHUP: plugins reloaded", "loaded", ch.Loaded, "replaced", ch.Replaced, "unloaded", ch.Unloaded, "err", err)
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return n.Shutdown(sctx)
}

func runConfig(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("config", "Print the effective configuration (after config file, environment and flags) and where data lives.", stderr)
	s.bindServe(fs)
	if err := s.load(fs, args); err != nil {
		return err
	}
	if err := s.node.Validate(); err != nil {
		return err
	}
	cfg := s.node
	cfg.TokenSecret = redact(cfg.TokenSecret)
	out := map[string]any{
		"config_file":         s.configFile,
		"default_config_file": defaultConfigFile(),
		"paths":               cfg.Paths(),
		"dev":                 cfg.Dev,
		"token_secret":        cfg.TokenSecret,
		"http":                cfg.HTTP,
		"media":               cfg.Media,
		"room":                cfg.Room,
		"signal":              cfg.Signal,
		"plugin_dir":          cfg.PluginDir,
		"plugins":             cfg.Plugins,
		"log_level":           s.logLevel,
		"log_format":          s.logFormat,
		"set_by":              s.sources,
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return "(set, redacted)"
}
