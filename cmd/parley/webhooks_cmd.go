package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parleyhq/parley/core"
)

const webhooksUsage = `Usage: parley webhooks list [--dead] [--host H] [--json]
       parley webhooks clear [--host H] [--dead]
       parley webhooks retry [--host H]

list shows the webhooks still to send (--dead: those given up on), clear
drops them (all sites, or one receiver host), retry sends the dead ones
again. They drive a running node's /v1/webhooks API with the admin token
of its data dir.`

// runWebhooks is `parley webhooks list|clear|retry`.
func runWebhooks(args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, webhooksUsage, "a subcommand is required: list, clear or retry", stderr)
	if err != nil {
		return err
	}
	s := newSettings()
	fs := newFlagSet("webhooks "+sub, "Show, clear or retry the webhooks of a running node (its outbox, or its cluster's).", stderr)
	s.bindAdmin(fs)
	host := fs.String("host", "", "only the webhooks to this receiver host (host or host:port)")
	dead := fs.Bool("dead", false, "list, clear: the dead-letter list instead of the pending webhooks (retry always takes dead ones)")
	asJSON := fs.Bool("json", false, "list: print the API's JSON answer")
	if err := s.load(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	q := url.Values{}
	if *host != "" {
		q.Set("host", *host)
	}
	if *dead && sub != "retry" {
		q.Set("dead", "1")
	}
	path := "/v1/webhooks"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	api, err := newAdminClient(s)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	switch sub {
	case "list":
		if err := api.do("GET", path, nil, "", &out); err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(out.Bytes())
			return err
		}
		return printWebhooks(stdout, out.Bytes(), *dead)
	case "clear":
		if err := api.do("DELETE", path, nil, "", &out); err != nil {
			return err
		}
		return printCount(stdout, out.Bytes(), "cleared")
	case "retry":
		path = strings.Replace(path, "/v1/webhooks", "/v1/webhooks/retry", 1)
		if err := api.do("POST", path, nil, "", &out); err != nil {
			return err
		}
		return printCount(stdout, out.Bytes(), "retried")
	}
	return fmt.Errorf("unknown webhooks subcommand %q (list, clear, retry)", sub)
}

// decodeWebhooks reads a list answer: a JSON array of webhooks, or an
// object holding one under "webhooks".
func decodeWebhooks(b []byte) ([]core.Webhook, error) {
	b = bytes.TrimSpace(b)
	var list []core.Webhook
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("webhook list: %w", err)
		}
		return list, nil
	}
	var doc struct {
		Webhooks []core.Webhook `json:"webhooks"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("webhook list: %w", err)
	}
	return doc.Webhooks, nil
}

// printWebhooks prints a list answer as a table.
func printWebhooks(w io.Writer, b []byte, dead bool) error {
	list, err := decodeWebhooks(b)
	if err != nil {
		return err
	}
	what := "pending"
	if dead {
		what = "dead"
	}
	if len(list) == 0 {
		_, err := fmt.Fprintf(w, "no %s webhooks\n", what)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if dead {
		fmt.Fprintln(tw, "ID\tSEQ\tROOM\tEVENT\tHOST\tATTEMPTS\tDIED\tLAST ERROR")
	} else {
		fmt.Fprintln(tw, "ID\tSEQ\tROOM\tEVENT\tHOST\tAGE")
	}
	now := time.Now()
	for _, h := range list {
		if dead {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", h.ID, h.Seq, h.Room, h.Event, h.Host, h.Attempts,
				h.Died.UTC().Format(time.RFC3339), oneLine(h.LastError, 60))
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", h.ID, h.Seq, h.Room, h.Event, h.Host, now.Sub(h.Enqueued).Round(time.Second))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%d %s webhooks\n", len(list), what)
	return err
}

// printCount prints the count of a clear or retry answer ({"cleared": n}
// or {"retried": n}; any other number field is taken too).
func printCount(w io.Writer, b []byte, verb string) error {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: unexpected answer %q: %w", verb, bytes.TrimSpace(b), err)
	}
	n, ok := doc[verb].(float64)
	for _, v := range doc {
		if f, isNum := v.(float64); !ok && isNum {
			n, ok = f, true
		}
	}
	if !ok {
		return fmt.Errorf("%s: no count in the answer %q", verb, bytes.TrimSpace(b))
	}
	_, err := fmt.Fprintf(w, "%s %d webhooks\n", verb, int(n))
	return err
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// bindWebhooks registers the webhook delivery settings of serve.
func (s *settings) bindWebhooks(fs *flag.FlagSet) {
	c := &s.node.Webhooks
	fs.DurationVar(&c.MaxAge, "webhook-max-age", c.MaxAge, "how long a failing webhook is retried before it goes to the dead-letter list")
	fs.DurationVar(&c.AttemptTimeout, "webhook-attempt-timeout", c.AttemptTimeout, "deadline of one webhook POST, response included")
	fs.DurationVar(&c.BackoffBase, "webhook-backoff-base", c.BackoffBase, "first retry delay of a failed webhook (doubling, with full jitter)")
	fs.DurationVar(&c.BackoffMax, "webhook-backoff-max", c.BackoffMax, "longest retry delay of a failed webhook")
	fs.IntVar(&c.PerHost, "webhook-per-host", c.PerHost, "concurrent webhook POSTs per receiver host")
	fs.IntVar(&c.Global, "webhook-concurrency", c.Global, "concurrent webhook POSTs in all")
	fs.DurationVar(&c.PollInterval, "webhook-poll-interval", c.PollInterval, "how often the outbox is checked when nothing nudged the pipeline")
}
