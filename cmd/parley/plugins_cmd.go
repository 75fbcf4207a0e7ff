package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/plugins"
)

// runPlugins is `parley plugins list|load|unload|reload`: it drives a
// running node's admin API.
func runPlugins(args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, "Usage: parley plugins list|load FILE.wasm [--manifest M.json] [--name N]|unload NAME|reload [flags]", "a subcommand is required", stderr)
	if err != nil {
		return err
	}
	s := newSettings()
	fs := newFlagSet("plugins "+sub, "Manage the plugins of a running node through its admin API.", stderr)
	s.bindAdmin(fs)
	manifest := fs.String("manifest", "", "manifest JSON file (load)")
	name := fs.String("name", "", "plugin name (load; default: the file's base name)")
	pos, rest := splitFile(args)
	if err := s.load(fs, rest); err != nil {
		return err
	}
	if pos == "" && fs.NArg() == 1 {
		pos = fs.Arg(0)
	}
	api, err := newAdminClient(s)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return api.do("GET", "/v1/admin/plugins", nil, "", stdout)
	case "reload":
		return api.do("POST", "/v1/admin/plugins/reload", nil, "", stdout)
	case "unload":
		if pos == "" {
			return fmt.Errorf("unload takes one plugin name")
		}
		return api.do("DELETE", "/v1/admin/plugins/"+pos, nil, "", stdout)
	case "load":
		if pos == "" {
			return fmt.Errorf("load takes one .wasm file")
		}
		body, ctype, n, err := pluginUpload(pos, *manifest, *name)
		if err != nil {
			return err
		}
		return api.do("PUT", "/v1/admin/plugins/"+n, body, ctype, stdout)
	}
	return fmt.Errorf("unknown plugins subcommand %q", sub)
}

// pluginUpload builds the multipart body of a plugin load.
func pluginUpload(path, manifestPath, name string) (*bytes.Buffer, string, string, error) {
	module, err := os.ReadFile(path)
	if err != nil {
		return nil, "", "", err
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), ".wasm")
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("module", filepath.Base(path))
	fw.Write(module)
	if manifestPath != "" {
		m, err := os.ReadFile(manifestPath)
		if err != nil {
			return nil, "", "", err
		}
		mw.WriteField("manifest", string(m))
	}
	mw.Close()
	return &body, mw.FormDataContentType(), name, nil
}

type adminClient struct {
	base, token string
	http        *http.Client
}

func newAdminClient(s *settings) (*adminClient, error) {
	tok, err := node.LoadAdminToken(s.node)
	if err != nil {
		return nil, err
	}
	return &adminClient{base: "http://" + s.node.HTTP.HTTPAddr, token: tok, http: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// do sends one request and copies the JSON answer to out; a non-2xx status
// is an error carrying the server's message.
func (a *adminClient) do(method, path string, body io.Reader, ctype string, out io.Writer) error {
	req, err := http.NewRequestWithContext(context.Background(), method, a.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("is the node running at %s? %w", a.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	_, err = out.Write(b)
	return err
}

// runPluginTest is `parley plugin test PLUGIN.wasm --hook H --input F`: it
// runs one hook of a plugin locally, without a node, and prints what it
// decided, how long it took and the memory it used.
func runPluginTest(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "Usage: parley plugin test PLUGIN.wasm --hook HOOK --input REQUEST.json [--config CONFIG.json] [--runs N]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return fmt.Errorf("only 'plugin test' exists")
	}
	fs := newFlagSet("plugin test", "Run one hook of a plugin locally and print the decision, latency and memory.", stderr)
	hook := fs.String("hook", "join", "hook: init, auth, join, publish, subscribe, presence")
	input := fs.String("input", "", "request JSON file (- for stdin)")
	config := fs.String("config", "", "plugin configuration JSON file")
	runs := fs.Int("runs", 1, "calls to make; latency is the median")
	file, rest := splitFile(args[1:])
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	}
	if file == "" {
		return fmt.Errorf("a PLUGIN.wasm file is required")
	}
	module, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	in, err := readInput(*input)
	if err != nil {
		return err
	}
	opts := plugins.TestOptions{Name: strings.TrimSuffix(filepath.Base(file), ".wasm"), Runs: *runs}
	if *config != "" {
		if opts.Config, err = os.ReadFile(*config); err != nil {
			return err
		}
	}
	res, err := plugins.TestRun(context.Background(), module, abi.Hook(*hook), in, opts)
	report := map[string]any{
		"hook": res.Hook, "output": res.Output, "decision": res.Decision, "auth": res.Auth, "webhooks": res.Webhooks,
		"load_time": res.LoadTime.String(), "first_call": res.FirstCall.String(), "latency": res.Latency.String(),
		"memory_bytes": res.MemoryBytes,
	}
	if err != nil {
		report["error"] = err.Error()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if encErr := enc.Encode(report); encErr != nil {
		return encErr
	}
	return err
}

// subcommand splits args into a command's subcommand and the rest. With
// no subcommand (or a flag first) it prints usage to stderr and fails:
// with flag.ErrHelp for -h/--help, else with missing as the message.
func subcommand(args []string, usage, missing string, stderr io.Writer) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return "", nil, flag.ErrHelp
		}
		return "", nil, errors.New(missing)
	}
	return args[0], args[1:], nil
}

// splitFile takes a leading non-flag argument out of args.
func splitFile(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func readInput(path string) ([]byte, error) {
	switch path {
	case "":
		return []byte("{}"), nil
	case "-":
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}
