package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// redisConn is the few Redis commands the cluster workload needs (GET,
// PING, INFO), spoken in RESP over one TCP connection: the load generator
// stays on the standard library (bench/go.mod has no dependency).
type redisConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRedis(ctx context.Context, addr string) (*redisConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &redisConn{c: c, br: bufio.NewReader(c)}, nil
}

func (r *redisConn) Close() error { return r.c.Close() }

// errNil is Redis's nil reply (a missing key).
var errNil = errors.New("redis: nil")

// do sends one command and returns its reply: a string (simple or bulk),
// an int64, or []any.
func (r *redisConn) do(args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = r.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return r.reply()
}

func (r *redisConn) reply() (any, error) {
	line, err := r.br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New("redis: " + line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, errNil
		}
		buf := make([]byte, n+2)
		if _, err := readFull(r.br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, max(n, 0))
		for range n {
			v, err := r.reply()
			if err != nil && !errors.Is(err, errNil) {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

func readFull(br *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := br.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// get returns the string value of key, or errNil.
func (r *redisConn) get(key string) (string, error) {
	v, err := r.do("GET", key)
	if err != nil {
		return "", err
	}
	s, _ := v.(string)
	return s, nil
}

// commandsProcessed is INFO stats' total_commands_processed: the Redis
// load a run caused is the difference of two readings.
func (r *redisConn) commandsProcessed() (int64, error) {
	v, err := r.do("INFO", "stats")
	if err != nil {
		return 0, err
	}
	s, _ := v.(string)
	for line := range strings.SplitSeq(s, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(rest, 10, 64)
		}
	}
	return 0, errors.New("redis: INFO stats has no total_commands_processed")
}
