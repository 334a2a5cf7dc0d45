package cluster

import "github.com/redis/go-redis/v9"

// nowMS is the server's clock in milliseconds: every expiry is measured on
// Redis's clock, never on the nodes' (which may disagree).
const nowMS = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// alive(member) tells whether a node incarnation's heartbeat has not
// expired. KEYS[nodesKey] must be the node sorted set.
const aliveFn = `local function alive(nodes, member)
  local exp = redis.call('ZSCORE', nodes, member)
  return exp and tonumber(exp) > now
end
`

// heartbeatScript: KEYS nodes, info; ARGV member, ttl ms, info JSON,
// first ("1" on the first beat), node id. It sets the member's expiry and
// info and forgets the nodes that expired. It returns 1 when done; 0 when
// the member had already expired (or been forgotten) before this beat:
// others may have taken its ports and sessions, so this incarnation is
// over; on the first beat, minus the milliseconds until another live
// incarnation of the same id expires, without registering: the check and
// the registration are one step, so two processes with one id never both
// join.
var heartbeatScript = redis.NewScript(nowMS + `
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[4] == '1' then
  local wait = 0
  local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
  for i = 1, #live, 2 do
    if live[i] ~= ARGV[1] and string.sub(live[i], 1, #ARGV[5] + 1) == ARGV[5] .. '#' then
      wait = math.max(wait, tonumber(live[i + 1]) - now)
    end
  end
  if wait > 0 then return -wait end
elseif (not exp) or tonumber(exp) <= now then
  return 0
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, m in ipairs(dead) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`)

// leaveScript: KEYS nodes, info; ARGV member.
var leaveScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)

// nodesScript: KEYS nodes, info. Returns the live members, each followed
// by its expiry (ms, server clock), its info, and lastly the server time.
var nodesScript = redis.NewScript(nowMS + `
local out = {}
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  table.insert(out, live[i])
  table.insert(out, live[i + 1])
  table.insert(out, redis.call('HGET', KEYS[2], live[i]) or '')
end
table.insert(out, tostring(now))
return out
`)

// acquireLeaseScript: KEYS lease, fence sequence, the member's held set,
// holders; ARGV member, ttl ms, session id. Returns {1, token} when taken,
// {0, holder value} when held. A lease taken is added to its holder's held
// set at once (claim.go): if the holder is lost, its set says what to claim.
var acquireLeaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local tok = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. tok, 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[1])
return {1, tostring(tok)}
`)

// renewLeasesScript: KEYS the leases; ARGV[1] ttl ms, ARGV[1+i] the value
// expected in KEYS[i]. Extends each lease that still holds its value
// (compare and extend); returns 1 or 0 per lease.
var renewLeasesScript = redis.NewScript(`
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[i + 1] then
    redis.call('PEXPIRE', k, ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`)

// releaseLeaseScript: KEYS lease, the member's held set, orphans and,
// when the node knows it, the running set; ARGV value, session id (compare
// and delete). The session leaves the held set; if it is still running and
// nobody holds it (a node stopping, a hand-over, a claim that must wait),
// it goes to the orphans, which every node's claim loop reads (claim.go).
var releaseLeaseScript = redis.NewScript(`
local n = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then n = redis.call('DEL', KEYS[1]) end
if KEYS[4] and redis.call('EXISTS', KEYS[1]) == 0 and redis.call('SISMEMBER', KEYS[4], ARGV[2]) == 1 then
  redis.call('SMOVE', KEYS[2], KEYS[3], ARGV[2])
else
  redis.call('SREM', KEYS[2], ARGV[2])
end
return n
`)

// acquirePortScript: KEYS ports, next, nodes; ARGV base, count, member.
// Takes the first port from the round-robin cursor that is free or held
// by a node that is not alive. Returns the port, or 0 when none is left.
var acquirePortScript = redis.NewScript(nowMS + aliveFn + `
local base, count, me = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local start = tonumber(redis.call('GET', KEYS[2]) or '0') % count
for i = 0, count - 1 do
  local j = (start + i) % count
  local port = tostring(base + j)
  local owner = redis.call('HGET', KEYS[1], port)
  if (not owner) or (owner ~= me and not alive(KEYS[3], owner)) then
    redis.call('HSET', KEYS[1], port, me)
    redis.call('SET', KEYS[2], (j + 1) % count)
    return base + j
  end
end
return 0
`)

// claimPortScript: KEYS ports, nodes; ARGV port, member. Returns "" when
// claimed, else the live holder.
var claimPortScript = redis.NewScript(nowMS + aliveFn + `
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and (owner == ARGV[2] or alive(KEYS[2], owner)) then return owner end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ''
`)

// releasePortScript: KEYS ports; ARGV port, member (compare and delete).
var releasePortScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`)
