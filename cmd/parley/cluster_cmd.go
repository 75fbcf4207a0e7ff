package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/raftstore"
)

const clusterUsage = `Usage: parley cluster <subcommand> [flags]

  init                 generate the cluster secret, store it in the data dir, print it
                       (--cluster-secret S stores a given secret instead, for the other nodes)
  status               nodes, leader, term, last contact, rooms per node (--raft-addr of any member)
  remove NODE          remove a node from the cluster (its rooms are released)
  drain                drain the local node (--http-addr): no new rooms, clients move, it leaves and stops
  recover --voters V   rewrite a stopped node's voters after the quorum was lost for good (docs/operations.md)`

// runCluster is `parley cluster init|status|remove|drain|recover`.
func runCluster(args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, clusterUsage, "a subcommand is required", stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "init":
		return clusterInit(args, stdout, stderr)
	case "status":
		return clusterStatus(args, stdout, stderr)
	case "remove":
		return clusterRemove(args, stdout, stderr)
	case "drain":
		return clusterDrain(args, stdout, stderr)
	case "recover":
		return clusterRecover(args, stdout, stderr)
	}
	fmt.Fprintln(stderr, clusterUsage)
	return fmt.Errorf("unknown cluster subcommand %q", sub)
}

func clusterInit(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("cluster init", "Generate the cluster secret (or store the given --cluster-secret) in the data dir and print it.", stderr)
	s.bindCommon(fs)
	if err := s.load(fs, args); err != nil {
		return err
	}
	secret := s.node.Cluster.Secret
	if secret == "" {
		var err error
		if secret, err = raftstore.GenerateSecret(); err != nil {
			return err
		}
	}
	if _, err := raftstore.ParseSecret(secret); err != nil {
		return err
	}
	path, err := node.WriteClusterSecret(s.node, secret)
	if err != nil {
		return err
	}
	fp, _ := raftstore.SecretFingerprint(secret)
	fmt.Fprintf(stdout, "Cluster secret (written to %s, mode 0600; fingerprint %s):\n\n  %s\n\n", path, fp, secret)
	fmt.Fprintf(stdout, "Give every node of the cluster this secret: 'parley cluster init --cluster-secret ...' in its\n"+
		"data dir, or PARLEY_CLUSTER_SECRET, or --cluster-secret. Whoever holds it can join the cluster.\n"+
		"Then start every voter with the same --peers, for example:\n\n"+
		"  parley serve --node-id n1 --raft-addr 10.0.0.1:7073 --http-addr 10.0.0.1:7070 \\\n"+
		"    --peers n1=10.0.0.1:7073,n2=10.0.0.2:7073,n3=10.0.0.3:7073\n")
	return nil
}

// bindRaftTarget registers what a command needs to reach a member's raft
// port: the secret (bindCommon) and the address.
func bindRaftTarget(s *settings, fs *flag.FlagSet) *time.Duration {
	s.bindCommon(fs)
	fs.StringVar(&s.node.Cluster.RaftAddr, "raft-addr", s.node.Cluster.RaftAddr, "Raft address of a cluster member to ask")
	return fs.Duration("timeout", 10*time.Second, "how long to wait for the cluster")
}

func newRaftAdmin(s *settings) (*raftstore.Admin, error) {
	secret, err := s.node.ClusterSecret()
	if err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, fmt.Errorf("no cluster secret: --cluster-secret, PARLEY_CLUSTER_SECRET, or the data dir of a node ('parley cluster init')")
	}
	return raftstore.NewAdmin(secret, nil, 5*time.Second)
}

func clusterStatus(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("cluster status", "Show the cluster as a member (and its leader) sees it.", stderr)
	timeout := bindRaftTarget(s, fs)
	asJSON := fs.Bool("json", false, "print the raw status as JSON")
	if err := s.load(fs, args); err != nil {
		return err
	}
	admin, err := newRaftAdmin(s)
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := admin.Status(ctx, s.node.Cluster.RaftAddr)
	if err != nil {
		return fmt.Errorf("ask %s: %w", s.node.Cluster.RaftAddr, err)
	}
	// The leader knows which members it cannot reach: show its view.
	if st.State != "Leader" && st.LeaderAddr != "" {
		if lst, err := admin.Status(ctx, st.LeaderAddr); err == nil {
			st = lst
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(stdout, st)
	return nil
}

func printStatus(w io.Writer, st raftstore.Status) {
	fmt.Fprintf(w, "node %s (%s): %s, term %d, leader %s", st.Node, st.Addr, st.State, st.Term, orDash(st.Leader))
	if !st.LastContact.IsZero() {
		fmt.Fprintf(w, ", last contact with the leader %s ago", time.Since(st.LastContact).Round(time.Millisecond))
	}
	fmt.Fprintf(w, "\nlog: last index %d, commit %d, applied %d\n", st.LastLogIndex, st.CommitIndex, st.AppliedIndex)
	if st.Fatal != "" {
		fmt.Fprintf(w, "FATAL: %s\n", st.Fatal)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nNODE\tRAFT ADDR\tSUFFRAGE\tHEALTH\tROOMS\tPARTICIPANTS\tSTATE\tPUBLIC URL")
	for _, n := range st.Nodes {
		state := "registered"
		switch {
		case !n.Registered:
			state = "unregistered"
		case n.Down:
			state = "down"
		case n.Draining:
			state = "draining"
		}
		health := n.Health
		if !n.SilentSince.IsZero() {
			health += " for " + time.Since(n.SilentSince).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", n.ID, n.RaftAddr, orDash(n.Suffrage), health,
			n.Rooms, n.Participants, state, orDash(n.PublicURL))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clusterRemove(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("cluster remove", "Remove node NODE from the cluster: from the voters and the registry; its rooms are released and its participants' presence ended.", stderr)
	timeout := bindRaftTarget(s, fs)
	id, rest := splitFile(args)
	if err := s.load(fs, rest); err != nil {
		return err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" {
		return fmt.Errorf("remove takes one node id")
	}
	admin, err := newRaftAdmin(s)
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := admin.RemoveNode(ctx, s.node.Cluster.RaftAddr, id); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "node %s removed from the cluster\n", id)
	return nil
}

func clusterDrain(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("cluster drain", "Drain the node at --http-addr: it takes no new rooms, its clients move to other nodes, it leaves the cluster and stops.", stderr)
	s.bindAdmin(fs)
	if err := s.load(fs, args); err != nil {
		return err
	}
	api, err := newAdminClient(s)
	if err != nil {
		return err
	}
	return api.do("POST", "/v1/admin/cluster/drain", nil, "", stdout)
}

func clusterRecover(args []string, stdout, stderr io.Writer) error {
	s := newSettings()
	fs := newFlagSet("cluster recover", "Rewrite the voters of this (stopped) node's replica after the cluster lost its quorum for good. Run it on every survivor with the same --voters, then start them as usual.", stderr)
	s.bindCommon(fs)
	fs.StringVar(&s.node.Cluster.NodeID, "node-id", "", "this node's id (default: the one in the data dir)")
	fs.StringVar(&s.node.Cluster.RaftAddr, "raft-addr", s.node.Cluster.RaftAddr, "this node's Raft address")
	fs.StringVar(&s.node.Cluster.AdvertiseAddr, "advertise-addr", "", "Raft address other nodes dial (default: --raft-addr)")
	voters := fs.String("voters", "", `the new voters, "id=host:port,...": the survivors`)
	if err := s.load(fs, args); err != nil {
		return err
	}
	if *voters == "" {
		return fmt.Errorf("--voters is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := node.RecoverCluster(s.node, *voters, log); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "voters of %s rewritten to %s; start the node as usual\n", s.node.Paths().RaftDir, *voters)
	return nil
}
