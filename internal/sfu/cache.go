package sfu

import "sync"

// cacheSize is how many packets of one layer the cache keeps: about 1 s of
// video at 1.5 Mbit/s, more than a NACK round trip.
const cacheSize = 512

// maxPacket is the largest RTP packet the cache stores; larger ones are not
// cached (they cannot come from a browser on a 1500-byte path).
const maxPacket = 1500

// packetCache keeps the last packets of one upstream layer by sequence
// number, so that subscribers' NACKs are answered by the server without
// asking the publisher. One cache per layer, shared by every subscriber:
// a packet is copied once on arrival, not once per subscriber.
type packetCache struct {
	mu    sync.Mutex
	slots [cacheSize]cacheSlot
}

type cacheSlot struct {
	seq   uint16
	n     int // 0: empty
	bytes [maxPacket]byte
}

// store copies the raw packet b with sequence number seq.
func (c *packetCache) store(seq uint16, b []byte) {
	if len(b) > maxPacket {
		return
	}
	c.mu.Lock()
	s := &c.slots[seq%cacheSize]
	s.seq = seq
	s.n = copy(s.bytes[:], b)
	c.mu.Unlock()
}

// get copies the packet with sequence number seq into buf and returns its
// length, or 0 if the cache no longer has it.
func (c *packetCache) get(seq uint16, buf []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[seq%cacheSize]
	if s.n == 0 || s.seq != seq {
		return 0
	}
	return copy(buf, s.bytes[:s.n])
}
