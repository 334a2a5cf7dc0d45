package teratest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
)

// RPCClient calls a service's RPCs exactly as OpenTera's RedisRPCClient
// (_internal_rpc_call) does.
type RPCClient struct {
	rdb *redis.Client
	seq atomic.Int64 // per-client id counter, from 0
}

// NewRPCClient returns a client on rdb.
func NewRPCClient(rdb *redis.Client) *RPCClient { return &RPCClient{rdb: rdb} }

// Call publishes RPCMessage{method, reply_to="RedisRPCClient.<uuid4>",
// id, timestamp, args} on service.<target>.rpc after its SUBSCRIBE to
// reply_to is confirmed, and waits up to timeout for the one reply.
func (c *RPCClient) Call(ctx context.Context, target, method string, timeout time.Duration, args ...any) (*pb.RPCReply, error) {
	msg := pb.NewRPCCall(method, c.seq.Add(1)-1, "RedisRPCClient."+uuid4(), args...)
	payload, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return c.CallRaw(ctx, "service."+target+".rpc", msg.ReplyTo, payload, timeout)
}

// CallRaw publishes payload on channel and waits for one reply on replyTo.
func (c *RPCClient) CallRaw(ctx context.Context, channel, replyTo string, payload []byte, timeout time.Duration) (*pb.RPCReply, error) {
	ps := c.rdb.Subscribe(ctx, replyTo)
	defer ps.Close()
	if _, err := ps.ReceiveTimeout(ctx, timeout); err != nil { // the subscribe confirmation
		return nil, fmt.Errorf("subscribe %s: %w", replyTo, err)
	}
	if err := c.rdb.Publish(ctx, channel, payload).Err(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		m, err := ps.ReceiveTimeout(ctx, time.Until(deadline))
		if err != nil {
			return nil, fmt.Errorf("no reply on %s within %s: %w", replyTo, timeout, err)
		}
		if msg, ok := m.(*redis.Message); ok {
			var r pb.RPCReply
			if err := json.Unmarshal([]byte(msg.Payload), &r); err != nil {
				return nil, fmt.Errorf("reply is not JSON: %w: %q", err, msg.Payload)
			}
			return &r, nil
		}
	}
}

func uuid4() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
