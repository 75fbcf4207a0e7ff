package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
)

// defaultDrainTimeout bounds a graceful stop unless --drain-timeout says
// otherwise.
const defaultDrainTimeout = 30 * time.Second

// serveFlags binds the flags of serve to s; info is --info.
func serveFlags(s *settings, out io.Writer) (fs *flag.FlagSet, info *bool) {
	fs = newFlagSet("serve", "Run a Parley node. With no settings it serves a working local node on 127.0.0.1:7070.", out)
	s.bindServe(fs)
	info = fs.Bool("info", false, "print what the node would run with (resolved settings, ports, data paths, plugins) and exit without serving")
	return fs, info
}

// loadServe gathers and checks serve's settings from args, the config
// file and the environment: at start and again on SIGHUP.
func loadServe(args []string, out io.Writer) (*settings, bool, error) {
	s := newSettings()
	fs, info := serveFlags(s, out)
	if err := s.load(fs, args); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		return nil, false, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return s, *info, s.validateServe()
}

// validateServe reports every invalid setting of serve.
func (s *settings) validateServe() error {
	var errs []error
	if _, err := s.parseLogSpec(); err != nil {
		errs = append(errs, err)
	}
	if s.logFormat != "text" && s.logFormat != "json" {
		errs = append(errs, fmt.Errorf("log-format must be text or json, got %q", s.logFormat))
	}
	if s.drain <= 0 {
		errs = append(errs, fmt.Errorf("drain-timeout must be positive, got %s", s.drain))
	}
	if err := s.node.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func runServe(args []string, stdout, stderr io.Writer) error {
	s, info, err := loadServe(args, stderr)
	if err != nil {
		return err
	}
	if info {
		return printServeInfo(s, stdout)
	}
	log, levels, err := s.logger()
	if err != nil {
		return err
	}
	// Catch the signals before serving, so that one sent as soon as the
	// node answers is not fatal (SIGHUP) or lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
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
	fmt.Fprintf(stdout, "Mint a token: parley token --room demo --identity alice. Node info: parley info. Stop with Ctrl-C.\n")
	sv := &server{n: n, log: log, levels: levels, cur: s, args: args, exit: os.Exit}
	return sv.run(sigs)
}

func runConfig(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("config", "Print the effective configuration (after config file, environment and flags) and where data lives.", stderr)
	s.bindServe(fs)
	if err := s.load(fs, args); err != nil {
		return err
	}
	if err := s.validateServe(); err != nil {
		return err
	}
	spec, _ := s.parseLogSpec()
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
		"webhooks":            cfg.Webhooks,
		"clustered":           cfg.Clustered(),
		"cluster_secret":      redact(cfg.Cluster.Secret),
		"log_level":           s.logLevel,
		"log_format":          s.logFormat,
		"log":                 spec.String(),
		"drain_timeout":       s.drain.String(),
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
