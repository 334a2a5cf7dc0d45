package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/config"
)

// drainWait bounds how long `cluster drain` waits for the node to leave:
// its shutdown takes at most serve's drain timeout, twice (sessions, then
// leaving the cluster), plus a heartbeat.
const drainWait = 2*drainTimeout + 5*time.Second

// clusterDrain is `rehabrtc cluster drain NODE_ID`: it asks the live node
// with that id, through its internal address and with the cluster's
// secret, to drain, then waits until the node has left the cluster.
func clusterDrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster drain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clusterUsage) }
	path := fs.String("config", "", "configuration file naming the cluster's Redis")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("cluster drain: name one node id")
	}
	id := fs.Arg(0)
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	rdb, err := clusterRedis(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	name := cfg.RehabRTC.Cluster.Name
	ctx, cancel := context.WithTimeout(ctx, drainWait)
	defer cancel()
	node, found, err := liveNode(ctx, rdb, name, id, "")
	if err != nil {
		return fmt.Errorf("cluster drain: %w", err)
	}
	if !found {
		return fmt.Errorf("cluster drain: no live node %q in cluster %q (see rehabrtc cluster status)", id, name)
	}
	secret, err := cluster.Secret(ctx, rdb, name)
	if err != nil {
		return fmt.Errorf("cluster drain: %w", err)
	}
	if err := cluster.RequestDrain(ctx, node, secret); err != nil {
		return fmt.Errorf("cluster drain: %w", err)
	}
	fmt.Fprintf(stdout, "node %s is draining %d sessions\n", node.Member(), len(node.Sessions))
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster drain: node %s has not left the cluster after %s", node.Member(), drainWait)
		case <-t.C:
		}
		if _, still, err := liveNode(ctx, rdb, name, node.ID, node.Member()); err == nil && !still {
			fmt.Fprintf(stdout, "node %s drained and left the cluster\n", node.Member())
			return nil
		}
	}
}

// liveNode finds the live node with id among the heartbeats; with member
// ("id#incarnation") set, only that incarnation (a supervisor may have
// started the node again already).
func liveNode(ctx context.Context, rdb redis.UniversalClient, name, id, member string) (cluster.NodeInfo, bool, error) {
	nodes, err := cluster.Nodes(ctx, rdb, name)
	if err != nil {
		return cluster.NodeInfo{}, false, err
	}
	for _, n := range nodes {
		if n.ID == id && (member == "" || n.Member() == member) {
			return n, true, nil
		}
	}
	return cluster.NodeInfo{}, false, nil
}
