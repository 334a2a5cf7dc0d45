package ports

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// EphemeralRangeFile is where Linux keeps the range of local ports it
// gives outgoing connections.
const EphemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// EphemeralOverlap says, in one sentence naming the settings, whether the
// pool [base, base+count) overlaps the kernel's ephemeral range read from
// file; "" when it does not or the range cannot be read (not Linux).
func EphemeralOverlap(file string, base, count int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return ""
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	last := base + count - 1
	if err1 != nil || err2 != nil || last < lo || base > hi {
		return ""
	}
	return fmt.Sprintf("WebRTC.local_base_port: session ports %d-%d overlap the kernel's ephemeral port range %d-%d (%s): "+
		"outgoing connections may hold some of them; a start skips a held port, but a pool below %d avoids it",
		base, last, lo, hi, file, lo)
}
