// Command parley runs a Parley media server node and its tools.
//
// Usage:
//
//	parley [serve] [flags]     run a node (the default command)
//	parley serve --info        print what serve would run with, without serving
//	parley config [flags]      print the effective configuration and paths
//	parley info [flags]        print a running node's version, addresses, role, plugins
//	parley token [flags]       mint a development client token
//	parley keys create|list|revoke|rotate|retire      API and signing keys
//	parley cluster init|status|remove|drain|recover   cluster tools
//	parley webhooks list|clear|retry [--host H] [--dead]   the webhook outbox
//	parley version             print the version
//
// Settings come from, in increasing precedence: defaults, the config file
// (--config, TOML, keys are flag names), PARLEY_* environment variables
// (PARLEY_ + flag name upper-cased, - as _), and flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/parleyhq/parley/cmd/internal/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run a node (default)", runServe},
		{"config", "print the effective configuration and the data/config paths", runConfig},
		{"info", "print a running node's version, id, addresses, data dir, cluster role, plugins, uptime", runInfo},
		{"token", "mint a development client token for --room and --identity", runToken},
		{"plugins", "list, load, unload or reload a running node's plugins", runPlugins},
		{"plugin", "plugin author tools: 'plugin test PLUGIN.wasm --hook join --input req.json'", runPluginTest},
		{"keys", "server API keys (create, list, revoke) and webhook signing keys (rotate, retire)", runKeys},
		{"cluster", "cluster tools: init, status, remove NODE, drain, recover", runCluster},
		{"webhooks", "list, clear or retry the webhooks still to send (--dead: given up on)", runWebhooks},
		{"version", "print the version", runVersion},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		usage(stdout)
		return 0
	}
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(args, stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			default:
				fmt.Fprintf(stderr, "parley %s: %v\n", name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "parley: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "parley %s: an edge media server (SFU) with WebSocket signaling\n\nUsage: parley <command> [flags]\n\nCommands:\n", node.Version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'parley <command> --help' for its flags. Settings: defaults < config file < PARLEY_* env < flags.\n")
}

func newFlagSet(name, summary string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: parley %s [flags]\n\n%s\n\nFlags (each also PARLEY_<NAME> and a config-file key):\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Print the version.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "parley %s\n", node.Version)
	return nil
}
