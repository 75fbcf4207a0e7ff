package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/parleyhq/parley/cmd/internal/logging"
	"github.com/parleyhq/parley/cmd/internal/node"
)

// Why a node stops.
const (
	stopPlain = iota // SIGINT, SIGTERM on a single node, a drain already done
	stopDrain        // SIGTERM on a clustered node: drain first
	stopFatal        // the cluster replica failed: exit non-zero
)

// stopGrace is how long past --drain-timeout a graceful stop may run
// before the process exits anyway (status 1).
const stopGrace = 10 * time.Second

// liveSettings are the settings SIGHUP applies to a running node; a change
// to any other needs a restart.
var liveSettings = []string{"log", "log-level"}

// server runs a started node until a signal, a fatal cluster replica or an
// admin-API drain stops it. Its methods run on runServe's goroutine, except
// watchStop, which only reads log and calls exit.
type server struct {
	n      *node.Node
	log    *slog.Logger
	levels *logging.Levels
	cur    *settings // what runs: the start-up settings plus live changes
	args   []string  // the command line, re-read on SIGHUP
	exit   func(code int)
}

// run serves signals, then stops the node gracefully. While the stop runs,
// a second SIGINT or SIGTERM exits at once with status 128+signal.
// sigs receives SIGINT, SIGTERM and SIGHUP.
func (sv *server) run(sigs <-chan os.Signal) error {
	why := sv.wait(sigs)
	stopped := make(chan struct{})
	defer close(stopped)
	go sv.watchStop(sigs, stopped, sv.cur.drain+stopGrace)
	return sv.stop(why)
}

// wait serves signals until the node is to stop: SIGINT stops it, SIGTERM
// drains a clustered node first, SIGHUP reloads; a fatal cluster replica
// or a drain through the admin API stop it too.
func (sv *server) wait(sigs <-chan os.Signal) int {
	for {
		select {
		case <-sv.n.Fatal():
			sv.log.Error("the cluster replica failed; stopping so that a supervisor restarts the node")
			return stopFatal
		case <-sv.n.Drained():
			sv.log.Info("drained through the admin API; stopping")
			return stopPlain
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				sv.reload()
				continue
			case syscall.SIGTERM:
				if sv.n.Clustered() {
					return stopDrain
				}
			}
			return stopPlain
		}
	}
}

// watchStop exits the process when a second SIGINT or SIGTERM arrives
// during the graceful stop, or when the stop overruns its bound.
func (sv *server) watchStop(sigs <-chan os.Signal, stopped <-chan struct{}, bound time.Duration) {
	t := time.NewTimer(bound)
	defer t.Stop()
	for {
		select {
		case <-stopped:
			return
		case <-t.C:
			sv.log.Error("graceful stop overran --drain-timeout; exiting now", "bound", bound)
			sv.exit(1)
			return
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				sv.log.Warn("SIGHUP ignored: the node is stopping")
				continue
			}
			code := 128 + int(sig.(syscall.Signal))
			sv.log.Warn("second stop signal: exiting at once without finishing the graceful stop", "signal", sig.String(), "exit_status", code)
			sv.exit(code)
			return
		}
	}
}

// stop drains (a clustered node on SIGTERM) and shuts the node down within
// --drain-timeout.
func (sv *server) stop(why int) error {
	timeout := sv.cur.drain
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if why == stopDrain {
		// Leave a third of the time for the shutdown that follows.
		dctx, dcancel := context.WithTimeout(ctx, timeout*2/3)
		sv.log.Info("SIGTERM: draining the node out of its cluster (a second SIGTERM exits at once)", "timeout", timeout)
		if err := sv.n.Drain(dctx); err != nil {
			sv.log.Error("drain failed; stopping without leaving the cluster", "err", err)
		}
		dcancel()
	} else {
		sv.log.Info("stopping: clients are told to reconnect, participants leave (a second signal exits at once)", "timeout", timeout)
	}
	err := sv.n.Shutdown(ctx)
	sv.log.Info("node stopped", "took", time.Since(start).Round(time.Millisecond), "err", err)
	if why == stopFatal {
		return errors.Join(errors.New("the cluster replica failed (its log writes stalled); restart the node"), err)
	}
	return err
}

// reload is SIGHUP: it reads the settings again as start-up did (config
// file, environment, command line), applies what can change live, names
// what needs a restart, and reloads the plugins. An invalid configuration
// is logged and the running one kept.
func (sv *server) reload() {
	next, _, err := loadServe(sv.args, io.Discard)
	if err != nil {
		sv.log.Error("SIGHUP: configuration invalid; keeping the running one", "err", err)
	} else {
		sv.apply(next)
	}
	if sv.n.PluginDir() == "" && !sv.n.Clustered() {
		sv.log.Info("SIGHUP: no plugin directory to reload")
		return
	}
	ch, err := sv.n.ReloadPlugins(context.Background())
	sv.log.Info("SIGHUP: plugins reloaded", "loaded", ch.Loaded, "replaced", ch.Replaced, "unloaded", ch.Unloaded, "err", err)
}

// apply takes the live settings of next and logs the others that differ
// from what runs.
func (sv *server) apply(next *settings) {
	var restart []string
	logChanged := false
	for _, name := range changedSettings(sv.cur.values, next.values) {
		if !slices.Contains(liveSettings, name) {
			restart = append(restart, name)
			continue
		}
		sv.cur.values[name] = next.values[name]
		logChanged = true
	}
	if logChanged {
		sv.cur.logSpec, sv.cur.logLevel = next.logSpec, next.logLevel
		spec, _ := next.parseLogSpec() // validated by loadServe
		sv.levels.Set(spec)
		sv.log.Info("SIGHUP: log levels changed", "log", spec.String())
	}
	if len(restart) > 0 {
		sv.log.Warn("SIGHUP: settings changed, restart needed to apply them", "settings", restart)
	}
	if !logChanged && len(restart) == 0 {
		sv.log.Info("SIGHUP: configuration unchanged")
	}
}

// changedSettings returns the names whose values differ, sorted.
func changedSettings(old, next map[string]string) []string {
	var out []string
	for name, v := range next {
		if ov, ok := old[name]; !ok || ov != v {
			out = append(out, name)
		}
	}
	for name := range old {
		if _, ok := next[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
