package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/config"
)

const clusterUsage = `Usage:
  rehabrtc cluster status [--config FILE] [--json]
                        the live nodes of the cluster named in RehabRTC.cluster: each node's
                        internal address, load (peers, sessions), heartbeat and the sessions
                        whose leases it holds, read from the heartbeats in Redis
  rehabrtc cluster drain [--config FILE] NODE_ID
                        the node hands each of its sessions to the least loaded other node
                        (pages reconnect through any gateway), then exits, as on SIGTERM;
                        waits until it has left the cluster
`

func clusterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, clusterUsage)
		if len(args) == 0 {
			return errors.New("cluster: missing subcommand (status or drain)")
		}
		return errUsageShown
	}
	if args[0] == "drain" {
		return clusterDrain(ctx, args[1:], stdout, stderr)
	}
	if args[0] != "status" {
		fmt.Fprint(stderr, clusterUsage)
		return fmt.Errorf("cluster: unknown subcommand %q (want status or drain)", args[0])
	}
	fs := flag.NewFlagSet("cluster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clusterUsage) }
	path := fs.String("config", "", "configuration file naming the cluster's Redis")
	asJSON := fs.Bool("json", false, "print the nodes as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return flagErr(err)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	rdb, err := clusterRedis(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes, err := cluster.Nodes(ctx, rdb, cfg.RehabRTC.Cluster.Name)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	if *asJSON {
		return printNodesJSON(stdout, nodes)
	}
	printNodes(stdout, cfg.RehabRTC.Cluster.Name, nodes)
	return nil
}

// clusterRedis connects to the cluster's Redis: one server, a Redis
// Cluster (several addresses) or Sentinels (with a master name).
func clusterRedis(cfg *config.Config) (redis.UniversalClient, error) {
	r := cfg.ClusterRedisServer()
	if len(r.Addrs) == 0 {
		return nil, errors.New("cluster: no Redis configured: set RehabRTC.cluster.redis.addrs (or the Redis section)")
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: r.Addrs, MasterName: r.MasterName, DB: r.DB, Username: r.Username, Password: r.Password,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	}), nil
}

func printNodes(w io.Writer, name string, nodes []cluster.NodeInfo) {
	var peers, sessions int
	for _, n := range nodes {
		peers += n.Load.Peers
		sessions += n.Load.Sessions
	}
	fmt.Fprintf(w, "cluster %q: %d live nodes, %d sessions, %d peers\n", name, len(nodes), sessions, peers)
	if len(nodes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tINCARNATION\tINTERNAL ADDRESS\tPEERS\tSESSIONS\tHEARTBEAT EXPIRES IN\tUP SINCE\tLEASES HELD")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", n.ID, n.Incarnation, n.InternalAddr, n.Load.Peers, n.Load.Sessions,
			n.ExpiresIn.Round(time.Millisecond), n.Started.Format(time.RFC3339), idList(n.Sessions))
	}
	tw.Flush()
}

func idList(ids []int64) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
		if id == cluster.ConsultLease {
			s[i] = "ehrc" // the node serving the consultations
		}
	}
	return strings.Join(s, " ")
}

// nodeJSON is one node in `cluster status --json`.
type nodeJSON struct {
	cluster.NodeInfo
	ExpiresInMS int64 `json:"heartbeat_expires_in_ms"`
}

func printNodesJSON(w io.Writer, nodes []cluster.NodeInfo) error {
	out := make([]nodeJSON, len(nodes))
	for i, n := range nodes {
		if n.Sessions == nil {
			n.Sessions = []int64{}
		}
		out[i] = nodeJSON{n, n.ExpiresIn.Milliseconds()}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"nodes": out})
}
