package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"
)

// runKeys is `parley keys create|list|revoke|rotate|retire`: server API
// keys and the webhook signing keys, managed through a running node's
// server API with its admin token.
func runKeys(args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, `Usage: parley keys create [--name N] | list | revoke ID | rotate | retire [flags]

  create   make a server API key; its secret is printed once, keep it
  list     the API keys (ids, names, creation times; never secrets)
  revoke   delete an API key: requests signed with it fail at once
  rotate   make a new webhook signing key; the old one still signs and
           stays at /pki until 'retire'
  retire   drop the old webhook signing keys`, "a subcommand is required", stderr)
	if err != nil {
		return err
	}
	s := newSettings()
	fs := newFlagSet("keys "+sub, "Manage server API keys and webhook signing keys through a running node.", stderr)
	s.bindAdmin(fs)
	name := fs.String("name", "", "create: a label for the key")
	asJSON := fs.Bool("json", false, "print the API's JSON answer")
	pos, rest := splitFile(args)
	if err := s.load(fs, rest); err != nil {
		return err
	}
	if pos == "" && fs.NArg() == 1 {
		pos = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if (sub == "revoke") != (pos != "") {
		return fmt.Errorf("%s takes %s", sub, map[bool]string{true: "one key id", false: "no arguments"}[sub == "revoke"])
	}
	client, err := newAdminClient(s)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	switch sub {
	case "create":
		body, _ := json.Marshal(map[string]string{"name": *name})
		err = client.do("POST", "/v1/keys", bytes.NewReader(body), "application/json", &out)
	case "list":
		err = client.do("GET", "/v1/keys", nil, "", &out)
	case "revoke":
		err = client.do("DELETE", "/v1/keys/"+url.PathEscape(pos), nil, "", &out)
	case "rotate":
		err = client.do("POST", "/v1/signing-keys/rotate", nil, "", &out)
	case "retire":
		err = client.do("POST", "/v1/signing-keys/retire", nil, "", &out)
	default:
		return fmt.Errorf("unknown keys subcommand %q (create, list, revoke, rotate, retire)", sub)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(out.Bytes())
		return err
	}
	return printKeys(stdout, sub, out.Bytes())
}

// keyAnswer is what the key endpoints answer, in every shape.
type keyAnswer struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Secret  string    `json:"secret"`
	Created time.Time `json:"created"`
	Active  bool      `json:"active"`
	Keys    []struct {
		ID      string    `json:"id"`
		Name    string    `json:"name"`
		Created time.Time `json:"created"`
	} `json:"keys"`
	Revoked string `json:"revoked"`
	Retired *int   `json:"retired"`
}

// printKeys prints an answer for people.
func printKeys(w io.Writer, sub string, b []byte) error {
	var a keyAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("unexpected answer %q: %w", b, err)
	}
	switch sub {
	case "create":
		fmt.Fprintf(w, "id:     %s\nname:   %s\nsecret: %s\n\nThe secret is shown only now: store it where your backend keeps secrets.\n", a.ID, a.Name, a.Secret)
	case "list":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, k := range a.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Name, k.Created.UTC().Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "%d API keys\n", len(a.Keys))
	case "revoke":
		fmt.Fprintf(w, "revoked %s\n", a.Revoked)
	case "rotate":
		fmt.Fprintf(w, "new active webhook signing key %s; the previous key still signs until 'parley keys retire'\n", a.ID)
	case "retire":
		n := 0
		if a.Retired != nil {
			n = *a.Retired
		}
		fmt.Fprintf(w, "retired %d old webhook signing keys\n", n)
	}
	return nil
}

// bindAPI registers the server API's limits (edge/api.Config).
func (s *settings) bindAPI(fs *flag.FlagSet) {
	c := &s.node.HTTP.API
	fs.Int64Var(&c.MaxBodyBytes, "api-max-body-bytes", c.MaxBodyBytes, "server API: bytes per JSON request body (413 beyond)")
	fs.IntVar(&c.MaxActions, "api-max-actions", c.MaxActions, "server API: actions per POST /v1/actions batch (413 beyond)")
	fs.Int64Var(&c.MaxPayloadBytes, "api-max-payload-bytes", c.MaxPayloadBytes, "server API: bytes per POST /v1/actions body (413 beyond)")
	fs.DurationVar(&c.RequestTimeout, "api-request-timeout", c.RequestTimeout, "server API: deadline of a whole request (408 while sending, timeout lines while running)")
	fs.DurationVar(&c.IdleTimeout, "api-idle-timeout", c.IdleTimeout, "server API: longest wait without progress (no body bytes: 408; no action done: timeout lines)")
	fs.DurationVar(&c.ActionTimeout, "api-action-timeout", c.ActionTimeout, "server API: deadline of one action")
	fs.IntVar(&c.Concurrency, "api-concurrency", c.Concurrency, "server API: actions of one batch run at once")
	fs.DurationVar(&c.IdempotencyTTL, "api-idempotency-ttl", c.IdempotencyTTL, "server API: how long an Idempotency-Key's response is kept for replay")
	fs.DurationVar(&c.ClockSkew, "api-clock-skew", c.ClockSkew, "server API: accepted clock difference of signed requests (and their replay window)")
	fs.DurationVar(&c.MaxTokenLifetime, "api-max-token-lifetime", c.MaxTokenLifetime, "server API: longest lifetime (exp-iat) of a bearer token")
}
