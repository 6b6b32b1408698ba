// Package sysmem tells how much memory a process may still allocate, so
// that commands refuse a request that cannot fit with a clear line instead
// of being killed by the kernel (or the Go runtime's "out of memory"
// trace) after minutes of work.
//
// Available reads, in pure Go, the cgroup limit of the process (cgroup v2
// memory.max minus memory.current, or v1 memory.limit_in_bytes minus
// memory.usage_in_bytes) and /proc/meminfo's MemAvailable, and returns the
// smaller. On systems without these files (not Linux) it reports the
// amount unknown and callers skip the check. The environment variable
// SLAB_MEMORY_LIMIT (bytes, or with a K/M/G/T suffix: "512M") caps the
// result: a user's own budget, and how tests make the check independent
// of the machine.
package sysmem

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// EnvLimit names the environment variable that caps Available.
const EnvLimit = "SLAB_MEMORY_LIMIT"

// Memory is the memory available to the process and where the figure came
// from.
type Memory struct {
	// Bytes is the memory available (meaningful only when Known).
	Bytes int64
	// Known is false where no source could be read (not Linux).
	Known bool
	// Source names the limit that decided Bytes ("MemAvailable", "cgroup
	// memory.max", "SLAB_MEMORY_LIMIT").
	Source string
}

// String is the figure and its source, for error messages.
func (m Memory) String() string {
	if !m.Known {
		return "unknown"
	}
	return fmt.Sprintf("%s (%s)", Bytes(m.Bytes), m.Source)
}

// Available returns the memory the process may still allocate: the
// smallest of MemAvailable, the cgroup's remaining allowance and
// SLAB_MEMORY_LIMIT. A malformed SLAB_MEMORY_LIMIT is an error naming it.
func Available() (Memory, error) {
	var m Memory
	take := func(b int64, src string) {
		if b < 0 {
			b = 0
		}
		if !m.Known || b < m.Bytes {
			m = Memory{Bytes: b, Known: true, Source: src}
		}
	}
	if b, ok := memAvailable("/proc/meminfo"); ok {
		take(b, "MemAvailable")
	}
	if b, src, ok := cgroupRemaining("/proc/self/cgroup", "/sys/fs/cgroup"); ok {
		take(b, src)
	}
	if s := os.Getenv(EnvLimit); s != "" {
		b, err := ParseBytes(s)
		if err != nil {
			return Memory{}, fmt.Errorf("%s=%q: %v", EnvLimit, s, err)
		}
		take(b, EnvLimit)
	}
	return m, nil
}

// ParseBytes reads a byte count: digits with an optional K, M, G or T
// suffix (powers of 1024; a trailing "B" or "iB" is allowed).
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mul := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mul = 1 << 10
		case 'M':
			mul = 1 << 20
		case 'G':
			mul = 1 << 30
		case 'T':
			mul = 1 << 40
		}
		if mul > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mul {
		return 0, fmt.Errorf("not a byte count (digits with an optional K, M, G or T suffix)")
	}
	return v * mul, nil
}

// Bytes formats a byte count for people: "512.0 MB", "3.2 GB" (powers of
// 1024, as free(1) and the kernel count).
func Bytes(b int64) string {
	f := float64(b)
	for _, u := range []string{"B", "KB", "MB", "GB", "TB", "PB"} {
		if f < 1024 || u == "PB" {
			if u == "B" {
				return fmt.Sprintf("%d B", b)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}

// memAvailable reads MemAvailable (kB) from a meminfo file.
func memAvailable(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}

// cgroupRemaining is the process's cgroup limit minus its usage, when a
// limit is set: v2 (the "0::" line of /proc/self/cgroup) or v1 (the
// "memory" controller's line). The cgroup directory is tried at the path
// /proc/self/cgroup names under root, then at root itself (a container
// sees its own cgroup there).
func cgroupRemaining(selfCgroup, root string) (int64, string, bool) {
	b, err := os.ReadFile(selfCgroup)
	if err != nil {
		return 0, "", false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			for _, dir := range []string{filepath.Join(root, parts[2]), root} {
				if r, ok := limitMinusUsage(filepath.Join(dir, "memory.max"), filepath.Join(dir, "memory.current")); ok {
					return r, "cgroup memory.max", true
				}
			}
		case hasController(parts[1], "memory"):
			for _, dir := range []string{filepath.Join(root, "memory", parts[2]), filepath.Join(root, "memory")} {
				if r, ok := limitMinusUsage(filepath.Join(dir, "memory.limit_in_bytes"), filepath.Join(dir, "memory.usage_in_bytes")); ok {
					return r, "cgroup memory.limit_in_bytes", true
				}
			}
		}
	}
	return 0, "", false
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// limitMinusUsage reads a cgroup limit file and a usage file; "max" or a
// value near 2^63 (v1's "no limit") means no limit.
func limitMinusUsage(limitPath, usagePath string) (int64, bool) {
	lb, err := os.ReadFile(limitPath)
	if err != nil {
		return 0, false
	}
	ls := strings.TrimSpace(string(lb))
	if ls == "max" {
		return 0, false
	}
	limit, err := strconv.ParseInt(ls, 10, 64)
	if err != nil || limit >= 1<<60 {
		return 0, false
	}
	var usage int64
	if ub, err := os.ReadFile(usagePath); err == nil {
		usage, _ = strconv.ParseInt(strings.TrimSpace(string(ub)), 10, 64)
	}
	return limit - usage, true
}
