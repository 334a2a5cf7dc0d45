// Package cluster is what the nodes of a rehabrtc cluster share in Redis,
// besides the session records (internal/store/redisstore): who is alive
// and how loaded (node heartbeats), who serves which session (leases with
// fencing tokens), and which session ports are taken (a cluster-wide
// session.Ports).
//
// A Node joins with an incarnation of its own (a restarted node is a new
// incarnation of the same id) and runs one loop that, every third of the
// lease time, writes its heartbeat and extends every lease it holds. A
// lease or a node whose extension does not succeed in time is lost: its
// Lost channel closes at the local deadline, which comes before Redis
// lets another node take over (docs/scale-out.md, "Failure model"), so a
// node cut from Redis stops serving before anyone else starts.
//
// Every key carries the hash tag {name}, so in a Redis Cluster they share
// one slot and each script touches keys of one slot only.
package cluster
