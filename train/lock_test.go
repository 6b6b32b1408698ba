package train

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestClaimRunDir: a claim locks the directory against a second one (until
// released), removes the temporaries of a killed write, refuses a run it
// may not touch and names what Force replaces.
func TestClaimRunDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	c, err := ClaimRunDir(dir, Fresh, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ClaimRunDir(dir, Force, ""); !errors.Is(err, ErrLocked) {
		t.Fatalf("second claim while the first holds it: %v", err)
	}
	c.Release()
	// The claim made the directory and the run wrote nothing: Release
	// leaves nothing behind (a training refused after its claim).
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("an untouched directory the claim created is still there: %v", err)
	}
	os.MkdirAll(dir, 0o755)
	for _, n := range []string{CheckpointFile, LogFile, "notes.tmp"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	if _, err := ClaimRunDir(dir, Fresh, ""); !errors.Is(err, ErrRunExists) {
		t.Fatalf("fresh claim of a directory holding a run: %v", err)
	}
	other := filepath.Join(t.TempDir(), CheckpointFile)
	os.WriteFile(other, []byte("x"), 0o644)
	if _, err := ClaimRunDir(dir, Resume, other); !errors.Is(err, ErrRunExists) {
		t.Fatalf("resume of another run into it: %v", err)
	}
	for _, n := range []string{".ckpt.safetensors.tmp123", ".log.jsonl.tmp9"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	c, err = ClaimRunDir(dir, Resume, filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Stale, []string{".ckpt.safetensors.tmp123", ".log.jsonl.tmp9"}) || c.Replacing() != nil {
		t.Errorf("stale %v, replacing %v", c.Stale, c.Replacing())
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.tmp")); err != nil {
		t.Errorf("a file of the user's was removed: %v", err)
	}
	c.Release()
	c, err = ClaimRunDir(dir, Force, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Replacing(); !slices.Equal(r, []string{CheckpointFile, LogFile}) {
		t.Errorf("force replaces %v", r)
	}
	if err := c.Clear(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointFile)); !os.IsNotExist(err) {
		t.Errorf("Clear left the checkpoint: %v", err)
	}
	c.Release()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	for _, d := range []string{file, filepath.Join(file, "sub")} {
		if _, err := ClaimRunDir(d, Fresh, ""); err == nil {
			t.Errorf("claimed %s", d)
		}
	}
}
