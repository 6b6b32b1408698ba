package sysmem

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"512": 512, "1K": 1024, "512M": 512 << 20, "2g": 2 << 30, "1GiB": 1 << 30, "3GB": 3 << 30} {
		got, err := ParseBytes(s)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1", "1X", "NaN", "99999999999T"} {
		if _, err := ParseBytes(s); err == nil {
			t.Errorf("ParseBytes(%q) accepted", s)
		}
	}
}

func TestCgroupAndMeminfo(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "meminfo"), "MemTotal:  100 kB\nMemAvailable:    2048 kB\n")
	if b, ok := memAvailable(filepath.Join(dir, "meminfo")); !ok || b != 2048<<10 {
		t.Errorf("memAvailable = %d, %v", b, ok)
	}
	// v2: limit at the named path.
	write(filepath.Join(dir, "self2"), "0::/job\n")
	write(filepath.Join(dir, "fs", "job", "memory.max"), "1000000\n")
	write(filepath.Join(dir, "fs", "job", "memory.current"), "400000\n")
	if r, _, ok := cgroupRemaining(filepath.Join(dir, "self2"), filepath.Join(dir, "fs")); !ok || r != 600000 {
		t.Errorf("v2 remaining = %d, %v", r, ok)
	}
	// v1 with no limit: unknown.
	write(filepath.Join(dir, "self1"), "4:memory:/x\n")
	write(filepath.Join(dir, "fs1", "memory", "memory.limit_in_bytes"), "9223372036854771712\n")
	if _, _, ok := cgroupRemaining(filepath.Join(dir, "self1"), filepath.Join(dir, "fs1")); ok {
		t.Error("v1 without a limit reported one")
	}
	write(filepath.Join(dir, "fs1", "memory", "memory.limit_in_bytes"), "5000\n")
	write(filepath.Join(dir, "fs1", "memory", "memory.usage_in_bytes"), "1000\n")
	if r, _, ok := cgroupRemaining(filepath.Join(dir, "self1"), filepath.Join(dir, "fs1")); !ok || r != 4000 {
		t.Errorf("v1 remaining = %d, %v", r, ok)
	}
}

func TestAvailableEnvCap(t *testing.T) {
	t.Setenv(EnvLimit, "64M")
	m, err := Available()
	if err != nil || !m.Known || m.Bytes > 64<<20 {
		t.Fatalf("Available with %s=64M: %+v, %v", EnvLimit, m, err)
	}
	t.Logf("%v", m)
	t.Setenv(EnvLimit, "lots")
	if _, err := Available(); err == nil {
		t.Fatal("malformed limit accepted")
	}
}
