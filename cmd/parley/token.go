package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
)

type tokenOptions struct {
	room, identity, name, metadata string
	ttl                            time.Duration
	noPublish, noSubscribe, noData bool
}

func bindTokenFlags(fs *flag.FlagSet, o *tokenOptions) {
	fs.StringVar(&o.room, "room", "", "room the token admits to (required)")
	fs.StringVar(&o.identity, "identity", "", "participant identity (required)")
	fs.StringVar(&o.name, "name", "", "display name")
	fs.StringVar(&o.metadata, "metadata", "", "participant metadata")
	fs.DurationVar(&o.ttl, "ttl", 6*time.Hour, "validity")
	fs.BoolVar(&o.noPublish, "no-publish", false, "deny publishing")
	fs.BoolVar(&o.noSubscribe, "no-subscribe", false, "deny subscribing")
	fs.BoolVar(&o.noData, "no-data", false, "deny sending data messages")
}

func runToken(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	var o tokenOptions
	fs := newFlagSet("token", "Mint a development client token, signed with the node's token secret, on stdout.", stderr)
	s.bindCommon(fs)
	bindTokenFlags(fs, &o)
	if err := s.load(fs, args); err != nil {
		return err
	}
	if o.room == "" || o.identity == "" {
		fs.Usage()
		return fmt.Errorf("--room and --identity are required")
	}
	secret, err := node.LoadTokenSecret(s.node)
	if err != nil {
		return err
	}
	c := core.Claims{
		Identity: o.identity, Name: o.name, Room: o.room, Metadata: o.metadata,
		Grants: core.Grants{CanPublish: !o.noPublish, CanSubscribe: !o.noSubscribe, CanPublishData: !o.noData},
	}
	tok, err := node.MintWithSecret(secret, c, o.ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
