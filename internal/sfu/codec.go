package sfu

// What the forwarder needs to know of a video payload, read once per packet
// by the upstream reader: where frames start, which frames are keyframes,
// the temporal layer, and the picture size a keyframe announces.

// frameInfo describes one RTP payload.
type frameInfo struct {
	keyframe bool   // the first packet of a keyframe: a safe place to start or switch
	start    bool   // the first packet of a frame (VP8)
	tid      uint8  // VP8 temporal layer id (0 when absent)
	width    uint16 // from a VP8 keyframe header, else 0
	height   uint16
	// Where the VP8 picture id and TL0PICIDX are in the payload (0: absent),
	// for rewriting; pid15 says the picture id has 15 bits.
	pidAt, tl0At uint8
	pid15        bool
}

// vp8Info parses a VP8 payload descriptor (RFC 7741 §4.2) and, for the
// first packet of a frame, the payload header (RFC 6386 §9.1).
func vp8Info(p []byte) frameInfo {
	var fi frameInfo
	if len(p) < 1 {
		return fi
	}
	b0 := p[0]
	start := b0&0x10 != 0 && b0&0x07 == 0 // S bit, partition 0
	i := 1
	if b0&0x80 != 0 { // X: extension byte follows
		if len(p) < 2 {
			return fi
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return fi
			}
			fi.pidAt = uint8(i)
			if p[i]&0x80 != 0 {
				fi.pid15 = true
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			fi.tl0At = uint8(i)
			i++
		}
		if len(p) <= i { // the descriptor is cut short: nothing to rewrite
			fi.pidAt, fi.tl0At = 0, 0
			return fi
		}
		if x&0x20 != 0 || x&0x10 != 0 { // T or K: TID/Y/KEYIDX byte
			if len(p) <= i {
				return fi
			}
			if x&0x20 != 0 {
				fi.tid = p[i] >> 6
			}
			i++
		}
	}
	if !start || len(p) <= i {
		return fi
	}
	fi.start = true
	h := p[i:]
	if h[0]&0x01 != 0 { // P bit set: an interframe
		return fi
	}
	fi.keyframe = true
	// A keyframe: 3-byte frame tag, start code 9d 01 2a, then 14-bit sizes.
	if len(h) >= 10 && h[3] == 0x9d && h[4] == 0x01 && h[5] == 0x2a {
		fi.width = uint16(h[6]) | uint16(h[7]&0x3f)<<8
		fi.height = uint16(h[8]) | uint16(h[9]&0x3f)<<8
	}
	return fi
}

// h264Info finds IDR slices and SPS in single NAL units, STAP-A and the
// start of FU-A (RFC 6184 §5). An SPS or IDR start is a keyframe start.
func h264Info(p []byte) frameInfo {
	var fi frameInfo
	if len(p) < 1 {
		return fi
	}
	switch nalType := p[0] & 0x1f; {
	case nalType == 5 || nalType == 7:
		fi.keyframe = true
	case nalType == 24: // STAP-A: 16-bit sizes then NAL units
		for i := 1; i+2 < len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			i += 2
			if n == 0 || i+n > len(p) {
				break
			}
			if t := p[i] & 0x1f; t == 5 || t == 7 {
				fi.keyframe = true
				break
			}
			i += n
		}
	case nalType == 28: // FU-A: start bit and original type
		if len(p) >= 2 && p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7) {
			fi.keyframe = true
		}
	}
	return fi
}

// vp8PictureID reads the picture id and TL0PICIDX that fi located in p.
func vp8PictureID(p []byte, fi frameInfo) (pid uint16, tl0 uint8) {
	if fi.pidAt != 0 {
		if fi.pid15 {
			pid = uint16(p[fi.pidAt]&0x7f)<<8 | uint16(p[fi.pidAt+1])
		} else {
			pid = uint16(p[fi.pidAt] & 0x7f)
		}
	}
	if fi.tl0At != 0 {
		tl0 = p[fi.tl0At]
	}
	return pid, tl0
}

// setVP8PictureID writes pid and tl0 at the places fi located in p.
func setVP8PictureID(p []byte, fi frameInfo, pid uint16, tl0 uint8) {
	if fi.pidAt != 0 {
		if fi.pid15 {
			p[fi.pidAt] = 0x80 | byte(pid>>8)&0x7f
			p[fi.pidAt+1] = byte(pid)
		} else {
			p[fi.pidAt] = byte(pid) & 0x7f
		}
	}
	if fi.tl0At != 0 {
		p[fi.tl0At] = tl0
	}
}
