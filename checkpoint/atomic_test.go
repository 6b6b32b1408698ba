package checkpoint

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestWriteAtomicHooks: the new content replaces the old only whole; a failing
// write or hook leaves the old file and no temporary.
func TestWriteAtomicHooks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.bin")
	put := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := WriteAtomic(path, put("old"), nil); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := WriteAtomic(path, func(w io.Writer) error { io.WriteString(w, "half"); return boom }, nil); !errors.Is(err, boom) {
		t.Fatalf("failing write: %v", err)
	}
	var seen []string
	hook := func(p string) error {
		seen = append(seen, p)
		if p == BeforeRename {
			return boom
		}
		return nil
	}
	if err := WriteAtomic(path, put("new"), hook); !errors.Is(err, boom) {
		t.Fatalf("hook error: %v", err)
	}
	if len(seen) != 2 || seen[0] != BeforeTemp || seen[1] != BeforeRename {
		t.Errorf("hook saw %v", seen)
	}
	assertOnly(t, dir, path, "old")
	if err := WriteAtomic(path, put("new"), nil); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, path, "new")
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

// TestAbortWrites: a process that aborts while its write's temporary is
// complete (the signal path of slab: AbortWrites, then exit) leaves the
// old file and no temporary. It runs in a child process because
// AbortWrites ends all writing for the rest of the process.
func TestAbortWrites(t *testing.T) {
	if path := os.Getenv("SLAB_ABORT_CHILD"); path != "" {
		WriteAtomic(path, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, func(p string) error {
			if p == BeforeRename {
				AbortWrites()
				os.Exit(143)
			}
			return nil
		})
		os.Exit(0) // not reached
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f.bin")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAbortWrites$")
	cmd.Env = append(os.Environ(), "SLAB_ABORT_CHILD="+path)
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("child: %v, want exit 143", err)
	}
	assertOnly(t, dir, path, "old")
}

// assertOnly checks that dir holds path alone, with content want.
func assertOnly(t *testing.T, dir, path, want string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s", names, filepath.Base(path))
	}
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("%s holds %q, want %q", path, b, want)
	}
}
