package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// ProcStats is what /proc says about one process at one instant.
type ProcStats struct {
	RSSkB     int64 // VmRSS
	AnonkB    int64 // RssAnon: heap, stacks; what a leak grows
	FilekB    int64 // RssFile: mapped files (binary, bbolt's mmap)
	HWMkB     int64 // VmHWM: peak RSS
	Threads   int
	FDs       int
	CPUTicks  int64 // utime+stime, in clock ticks
	Goroutine int   // from /metrics when the process is rehabrtc; -1 otherwise
	// Go heap and stack in use (bytes), from /metrics; 0 for other processes.
	HeapInuse, StackInuse, HeapAlloc int64
}

// clockTicks is USER_HZ; Linux has used 100 on every mainstream
// architecture for decades (getconf CLK_TCK), and /proc/pid/stat is in it.
const clockTicks = 100

// CPUSeconds converts a tick count.
func CPUSeconds(ticks int64) float64 { return float64(ticks) / clockTicks }

// ReadProc reads /proc/<pid>/{status,stat,fd}.
func ReadProc(pid int) (ProcStats, error) {
	s := ProcStats{Goroutine: -1}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.RSSkB = n
		case "RssAnon":
			s.AnonkB = n
		case "RssFile":
			s.FilekB = n
		case "VmHWM":
			s.HWMkB = n
		case "Threads":
			s.Threads = int(n)
		}
	}
	s.CPUTicks, err = cpuTicks(pid)
	if err != nil {
		return s, err
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(ents)
	return s, nil
}

// cpuTicks reads utime+stime from /proc/<pid>/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: cut after
	// the last ')'. Fields then start at field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return ut + st, nil
}

// SelfCPUTicks is the load generator's own CPU time.
func SelfCPUTicks() int64 {
	t, _ := cpuTicks(os.Getpid())
	return t
}

// Machine describes where a run happened.
type Machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	NodeVer   string `json:"node_version,omitempty"`
	MemTotal  string `json:"mem_total"`
	NoFile    uint64 `json:"rlimit_nofile"`
}

// DescribeMachine reads /proc/cpuinfo, /proc/meminfo and uname.
func DescribeMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if _, v, ok := strings.Cut(line, ":"); ok {
			m.MemTotal = strings.TrimSpace(v)
		}
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.NoFile = rl.Cur
	}
	return m
}

// RaiseNoFile raises the soft RLIMIT_NOFILE to min(want, hard) and returns
// the new soft limit.
func RaiseNoFile(want uint64) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur < want {
		rl.Cur = min(want, rl.Max)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}

// cpuMask is a sched_setaffinity mask for up to 1024 CPUs.
type cpuMask [16]uint64

func maskOf(cpus []int) cpuMask {
	var m cpuMask
	for _, c := range cpus {
		if c >= 0 && c < 1024 {
			m[c/64] |= 1 << (c % 64)
		}
	}
	return m
}

// setAffinity pins one thread (or process leader) tid to cpus.
func setAffinity(tid int, cpus []int) error {
	m := maskOf(cpus)
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return errno
	}
	return nil
}

// PinProcess pins every thread of pid to cpus. Threads created afterwards
// inherit the mask of the thread that creates them, so pinning all the
// current ones pins the process for good.
func PinProcess(pid int, cpus []int) error {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	var first error
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := setAffinity(tid, cpus); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// AllowedCPUs lists the CPUs this process may run on.
func AllowedCPUs() []int {
	var m cpuMask
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		out := make([]int, runtime.NumCPU())
		for i := range out {
			out[i] = i
		}
		return out
	}
	var out []int
	for i := range 1024 {
		if m[i/64]&(1<<(i%64)) != 0 {
			out = append(out, i)
		}
	}
	return out
}

// cpuList formats cpus for taskset -c.
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// machineBusy returns the busy time of all CPUs (user, nice, system, irq,
// softirq, steal) from /proc/stat, in ticks.
func machineBusy() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest (already in user)
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return busy
}

// ownTicks is the CPU time of this process and of its reaped children
// (servers, node), in ticks.
func ownTicks() int64 {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	ns := self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano()
	return ns * clockTicks / 1e9
}

// RunQueueWait is how long the process's threads have waited on a CPU's
// run queue so far (the second field of each /proc/<pid>/task/*/schedstat,
// summed): time a thread was runnable but another task held its CPU.
// Threads that ended are not counted, so read it over a window in which
// the process keeps its threads (a Go process does).
func RunQueueWait(pid int) time.Duration {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		sum += n
	}
	return time.Duration(sum)
}
