package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChecksBeforeLoading: what a command must refuse before it claims an
// output or loads anything (issue 14): an empty split (gzip or raw), a
// corpus that is a directory, an unknown tokenizer, a batcher of zero
// windows (eval-lm --batch 0 looped forever), a directory given as an
// image.
func TestChecksBeforeLoading(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("t10k-images-idx3-ubyte.gz", gz(idxBytes([]int{0, 2, 2}, nil)))
	write("t10k-labels-idx1-ubyte", idxBytes([]int{0}, nil))
	if err := CheckDir("mnist", "test", dir); err == nil || !strings.Contains(err.Error(), "holds no images") {
		t.Errorf("empty gzip split: %v", err)
	}
	write("train-images-idx3-ubyte", idxBytes([]int{1, 2, 2}, make([]byte, 4)))
	write("train-labels-idx1-ubyte", idxBytes([]int{1}, []byte{3}))
	if err := CheckDir("mnist", "train", dir); err != nil {
		t.Errorf("one-image raw split: %v", err)
	}
	if err := CheckDir("mnist", "train", filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing dir: %v", err)
	}
	if err := CheckTextSource(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("corpus directory: %v", err)
	}
	if err := CheckTokenizerName("sentencepiece"); err == nil || CheckTokenizerName(WordName) != nil {
		t.Errorf("tokenizer names: %v", err)
	}
	for _, bt := range [][2]int{{0, 4}, {2, 0}, {-1, 4}} {
		if _, err := NewBatcher(make([]int, 100), bt[0], bt[1], 0); err == nil {
			t.Errorf("NewBatcher(B %d, T %d) accepted", bt[0], bt[1])
		}
	}
	if _, err := LoadImage(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("image directory: %v", err)
	}
}
