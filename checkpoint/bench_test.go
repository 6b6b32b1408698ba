package checkpoint

import (
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
