package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	if err := n.Start(context.Background()); err != nil {
		_ = n.Shutdown(context.Background())
		return err
	}
	fmt.Fprintf(stdout, "Parley %s is running.\n  open:    %s\n  signal:  %s\n  media:   udp/%d\n  data:    %s\n",
		node.Version, n.URL(), n.SignalURL(), n.MediaPort(), s.node.Paths().DataDir)
	if st := n.Store(); st != nil {
		fmt.Fprintf(stdout, "  cluster: node %s, raft %s (parley cluster status --raft-addr %s)\n", n.ID(), st.Addr(), st.Addr())
	}
	if wt := n.WebTransportURL(); wt != "" {
		fmt.Fprintf(stdout, "  wt:      %s (certificate hash at %s/v1/cert-hash)\n", wt, n.URL())
	}
	if s.node.Dev {
		fmt.Fprintf(stdout, "  dev:     tokens at %s/v1/dev/token?room=demo&identity=alice\n", n.URL())
	}
	fmt.Fprintf(stdout, "Mint a token: parley token --room demo --identity alice. Stop with Ctrl-C.\n")
	why := waitForStop(n, log)
	if why == stopDrain {
		log.Info("SIGTERM: draining the node out of its cluster", "timeout", drainTimeout)
		dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		if err := n.Drain(dctx); err != nil {
			log.Error("drain failed; stopping without leaving the cluster", "err", err)
		}
		cancel()
	}
	log.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = n.Shutdown(sctx)
	if why == stopFatal {
		return errors.Join(errors.New("the cluster replica failed (its log writes stalled); restart the node"), err)
	}
	return err
}

// Why a node stops.
const (
	stopPlain = iota // SIGINT, SIGTERM on a single node, a drain already done
	stopDrain        // SIGTERM on a clustered node: drain first
	stopFatal        // the cluster replica failed: exit non-zero
)

// drainTimeout bounds the drain SIGTERM starts on a clustered node.
const drainTimeout = 20 * time.Second

// waitForStop serves signals until the node is to stop: SIGINT stops it,
// SIGTERM drains a clustered node first (it reports true then), SIGHUP
// reloads the plugins; a fatal cluster replica or a drain through the
// admin API stop it too.
func waitForStop(n *node.Node, log *slog.Logger) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case <-n.Fatal():
			log.Error("the cluster replica failed; stopping so that a supervisor restarts the node")
			return stopFatal
		case <-n.Drained():
			log.Info("drained through the admin API; stopping")
			return stopPlain
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if n.PluginDir() == "" && !n.Clustered() {
					log.Info("SIGHUP: no plugin directory to reload")
					continue
				}
				ch, err := n.ReloadPlugins(context.Background())
				log.Info("SIGHUP: plugins reloaded", "loaded", ch.Loaded, "replaced", ch.Replaced, "unloaded", ch.Unloaded, "err", err)
				continue
			case syscall.SIGTERM:
				if n.Clustered() {
					return stopDrain
				}
			}
			return stopPlain
		}
	}
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
		"cluster":             cfg.Cluster,
		"clustered":           cfg.Clustered(),
		"cluster_secret":      redact(cfg.Cluster.Secret),
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
