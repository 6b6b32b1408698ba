package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
)

// benchFile is a ViT-S-sized checkpoint: 22M float32 values (88 MB) in
// 150 tensors.
func benchFile() *File {
	f := NewFile()
	for i := 0; i < 150; i++ {
		e := &Entry{DType: "F32", Shape: []int{384, 384}, F32: make([]float32, 384*384)}
		for j := range e.F32 {
			e.F32[j] = float32(j%1000) * 0.001
		}
		f.Tensors[string(rune('a'+i%26))+string(rune('a'+i/26))] = e
	}
	return f
}

func BenchmarkWrite88MB(b *testing.B) {
	f := benchFile()
	path := filepath.Join(b.TempDir(), "big.safetensors")
	b.SetBytes(150 * 384 * 384 * 4)
	for i := 0; i < b.N; i++ {
		if err := Write(path, f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead88MB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.safetensors")
	if err := Write(path, benchFile()); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(150 * 384 * 384 * 4)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Read(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal88MB(b *testing.B) {
	f := benchFile()
	b.SetBytes(150 * 384 * 384 * 4)
	for i := 0; i < b.N; i++ {
		if _, err := Marshal(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadPTH reads the .pth named by $SLAB_BENCH_PTH (for example
// one written by tools/reference/reference.py --pth-full), both ways.
func BenchmarkReadPTH(b *testing.B) {
	path := os.Getenv("SLAB_BENCH_PTH")
	if path == "" {
		b.Skip("set SLAB_BENCH_PTH to a .pth file")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("file-view", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for i := 0; i < b.N; i++ {
			if _, err := ReadPTH(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bytes-copy", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for i := 0; i < b.N; i++ {
			if _, err := ReadPTHBytes(raw, path, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
