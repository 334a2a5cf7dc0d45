package boltstore

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's meta page layout (go.etcd.io/bbolt, internal/common/meta.go),
// little-endian: a 16-byte page header, then magic, version, page size,
// flags, root bucket (root page, sequence), freelist page, high-water page,
// txid and an FNV-64a checksum of everything before it.
const (
	metaMagic      = 0xED0CDAED
	metaVersion    = 2
	metaHeader     = 16
	metaEnd        = metaHeader + 64 // the checksum's offset
	noFreelist     = ^uint64(0)      // bbolt's pgidNoFreelist
	defaultPageLen = 4096
)

type meta struct {
	pageSize               uint32
	root, freelist, pageID uint64 // pageID: the high-water mark
	txid                   uint64
}

// readMeta decodes the meta page at buf, reporting whether it is valid.
func readMeta(buf []byte) (meta, bool) {
	if len(buf) < metaEnd+8 {
		return meta{}, false
	}
	le := binary.LittleEndian
	if le.Uint32(buf[16:]) != metaMagic || le.Uint32(buf[20:]) != metaVersion {
		return meta{}, false
	}
	h := fnv.New64a()
	h.Write(buf[metaHeader:metaEnd])
	if h.Sum64() != le.Uint64(buf[metaEnd:]) {
		return meta{}, false
	}
	return meta{pageSize: le.Uint32(buf[24:]), root: le.Uint64(buf[32:]),
		freelist: le.Uint64(buf[48:]), pageID: le.Uint64(buf[56:]), txid: le.Uint64(buf[64:])}, true
}

// checkBounds refuses a file whose newest valid meta page points past its
// end. bbolt would read those pages through its memory map in a goroutine
// of its own (Tx.Check), where a fault cannot be recovered and kills the
// process: a file cut short must be found damaged before that. A file with
// no valid meta page is left to bbolt, which says so itself.
func checkBounds(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	defer f.Close()
	var best meta
	found := false
	pageLen := int64(defaultPageLen)
	for i := int64(0); i < 2; i++ {
		buf := make([]byte, metaEnd+8)
		if _, err := f.ReadAt(buf, i*pageLen); err != nil && err != io.EOF {
			return fmt.Errorf("store %s: %w", path, err)
		}
		m, ok := readMeta(buf)
		if !ok {
			continue
		}
		if i == 0 && m.pageSize >= 512 && m.pageSize <= 1<<16 {
			pageLen = int64(m.pageSize)
		}
		if !found || m.txid > best.txid {
			best, found = m, true
		}
	}
	if !found {
		return nil
	}
	switch {
	case best.pageID < 2 || int64(best.pageID) > size/pageLen:
		return damaged(path, fmt.Sprintf("the file is cut short: %d bytes, its meta page needs %d pages of %d bytes", size, best.pageID, pageLen))
	case best.root >= best.pageID:
		return damaged(path, fmt.Sprintf("the root page %d is past the end (%d pages)", best.root, best.pageID))
	case best.freelist != noFreelist && best.freelist >= best.pageID:
		return damaged(path, fmt.Sprintf("the freelist page %d is past the end (%d pages)", best.freelist, best.pageID))
	}
	return nil
}
