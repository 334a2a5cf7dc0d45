package sfu

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/pion/rtcp"
)

// appendRTCP appends the compound packet pkts to b, as rtcp.Marshal
// would, without allocating for the kinds the router sends in steady
// state (rtcp's Marshal allocates per packet and per report block). Other
// kinds, and packets such an encoder would refuse, go through their own
// Marshal (which returns rtcp's error).
func appendRTCP(b []byte, pkts []rtcp.Packet) ([]byte, error) {
	for _, p := range pkts {
		start := len(b)
		b = slices.Grow(b, p.MarshalSize())
		var ok bool
		switch p := p.(type) {
		case *rtcp.SenderReport:
			b, ok = appendSR(b, p)
		case *rtcp.ReceiverReport:
			b, ok = appendRR(b, p)
		case *rtcp.TransportLayerNack:
			b, ok = appendNACK(b, p)
		case *rtcp.PictureLossIndication:
			b = appendHeader(b, rtcp.Header{Count: rtcp.FormatPLI, Type: rtcp.TypePayloadSpecificFeedback, Length: 2})
			b, ok = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(b, p.SenderSSRC), p.MediaSSRC), true
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			n, err := p.MarshalTo(b[start : start+p.MarshalSize()])
			b, ok = b[:start+n], err == nil
		case *rtcp.TransportLayerCC:
			b, ok = appendTWCC(b, p)
		}
		if ok {
			continue
		}
		raw, err := p.Marshal()
		if err != nil {
			return b[:start], err
		}
		b = append(b[:start], raw...)
	}
	return b, nil
}

func appendHeader(b []byte, h rtcp.Header) []byte {
	first := byte(2 << 6) // version 2
	if h.Padding {
		first |= 1 << 5
	}
	return binary.BigEndian.AppendUint16(append(b, first|h.Count, byte(h.Type)), h.Length)
}

// appendReports appends report blocks and profile extensions, padded to a
// word; false where rtcp would refuse them.
func appendReports(b []byte, reps []rtcp.ReceptionReport, ext []byte) ([]byte, bool) {
	if len(reps) > 31 {
		return b, false
	}
	for i := range reps {
		r := &reps[i]
		if r.TotalLost >= 1<<25 {
			return b, false
		}
		b = binary.BigEndian.AppendUint32(b, r.SSRC)
		b = binary.BigEndian.AppendUint32(b, uint32(r.FractionLost)<<24|r.TotalLost&0xffffff)
		b = binary.BigEndian.AppendUint32(b, r.LastSequenceNumber)
		b = binary.BigEndian.AppendUint32(b, r.Jitter)
		b = binary.BigEndian.AppendUint32(b, r.LastSenderReport)
		b = binary.BigEndian.AppendUint32(b, r.Delay)
	}
	b = append(b, ext...)
	for range (4 - len(ext)%4) % 4 {
		b = append(b, 0)
	}
	return b, true
}

func appendSR(b []byte, p *rtcp.SenderReport) ([]byte, bool) {
	b = appendHeader(b, p.Header())
	b = binary.BigEndian.AppendUint32(b, p.SSRC)
	b = binary.BigEndian.AppendUint64(b, p.NTPTime)
	b = binary.BigEndian.AppendUint32(b, p.RTPTime)
	b = binary.BigEndian.AppendUint32(b, p.PacketCount)
	b = binary.BigEndian.AppendUint32(b, p.OctetCount)
	return appendReports(b, p.Reports, p.ProfileExtensions)
}

func appendRR(b []byte, p *rtcp.ReceiverReport) ([]byte, bool) {
	b = appendHeader(b, p.Header())
	b = binary.BigEndian.AppendUint32(b, p.SSRC)
	return appendReports(b, p.Reports, p.ProfileExtensions)
}

func appendNACK(b []byte, p *rtcp.TransportLayerNack) ([]byte, bool) {
	if len(p.Nacks)+2 > math.MaxUint8 {
		return b, false
	}
	b = appendHeader(b, p.Header())
	b = binary.BigEndian.AppendUint32(b, p.SenderSSRC)
	b = binary.BigEndian.AppendUint32(b, p.MediaSSRC)
	for _, n := range p.Nacks {
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, n.PacketID), uint16(n.LostPackets))
	}
	return b, true
}

// appendTWCC is rtcp.TransportLayerCC's Marshal: the header as given,
// then the chunks, the receive deltas and the padding the header asks for.
func appendTWCC(b []byte, p *rtcp.TransportLayerCC) ([]byte, bool) {
	size := p.MarshalSize()
	if p.Header.Count > 31 || size > (math.MaxUint16+1)*4 {
		return b, false
	}
	start := len(b)
	b = appendHeader(b, p.Header)
	b = binary.BigEndian.AppendUint32(b, p.SenderSSRC)
	b = binary.BigEndian.AppendUint32(b, p.MediaSSRC)
	b = binary.BigEndian.AppendUint16(b, p.BaseSequenceNumber)
	b = binary.BigEndian.AppendUint16(b, p.PacketStatusCount)
	b = binary.BigEndian.AppendUint32(b, p.ReferenceTime<<8|uint32(p.FbPktCount))
	for _, c := range p.PacketChunks {
		v, ok := twccChunk(c)
		if !ok {
			return b, false
		}
		b = binary.BigEndian.AppendUint16(b, v)
	}
	for _, d := range p.RecvDeltas {
		v := d.Delta / rtcp.TypeTCCDeltaScaleFactor
		switch {
		case d.Type == rtcp.TypeTCCPacketReceivedSmallDelta && v >= 0 && v <= math.MaxUint8:
			b = append(b, byte(v))
		case d.Type == rtcp.TypeTCCPacketReceivedLargeDelta && v >= math.MinInt16 && v <= math.MaxInt16:
			b = binary.BigEndian.AppendUint16(b, uint16(v))
		default:
			return b, false
		}
	}
	for len(b)-start < size {
		b = append(b, 0)
	}
	if p.Header.Padding && len(b) > start {
		b[len(b)-1] = byte(size - twccUnpadded(p))
	}
	return b, true
}

// twccUnpadded is the packet's length before padding: what MarshalSize
// rounds up.
func twccUnpadded(p *rtcp.TransportLayerCC) int {
	n := 4 + 16 + 2*len(p.PacketChunks)
	for _, d := range p.RecvDeltas {
		n++
		if d.Type == rtcp.TypeTCCPacketReceivedLargeDelta {
			n++
		}
	}
	return n
}

// twccChunk is a packet status chunk's two bytes.
func twccChunk(c rtcp.PacketStatusChunk) (uint16, bool) {
	switch c := c.(type) {
	case *rtcp.RunLengthChunk:
		return (c.PacketStatusSymbol&3)<<13 | c.RunLength&0x1fff, true
	case *rtcp.StatusVectorChunk:
		v := uint16(1<<15) | (c.SymbolSize&1)<<14
		bits := uint16(1)
		if c.SymbolSize == rtcp.TypeTCCSymbolSizeTwoBit {
			bits = 2
		}
		for i, s := range c.SymbolList {
			at := bits*uint16(i) + 2
			if at+bits > 16 {
				return 0, false
			}
			v |= (s & (1<<bits - 1)) << (16 - bits - at)
		}
		return v, true
	}
	return 0, false
}
