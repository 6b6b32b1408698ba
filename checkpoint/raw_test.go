package checkpoint

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"
)

// TestRawLowPrec: BF16 and I8 entries written from their stored form
// (NewBF16Entry, NewInt8Entry) read back through ReadRaw as the same
// bytes, without F32/I64 copies, and through Read widened; BF16s and
// Int8s give the stored values from either; rewriting a raw read gives
// the same file.
func TestRawLowPrec(t *testing.T) {
	bf := []uint16{0x3f80, 0xbf80, 0x4049, 0x0000, 0x7f80, 0x3c00}
	i8 := []int8{-127, -1, 0, 1, 127, -128}
	f := NewFile()
	f.Tensors["w.bf16"] = NewBF16Entry([]int{2, 3}, bf)
	f.Tensors["w.i8"] = NewInt8Entry([]int{3, 2}, i8)
	f.Tensors["w.scale"] = &Entry{DType: "F32", Shape: []int{3, 1}, F32: []float32{0.5, 0.25, 2}}
	path := filepath.Join(t.TempDir(), "q.safetensors")
	if err := Write(path, f); err != nil {
		t.Fatal(err)
	}
	raw, err := ReadRaw(path)
	if err != nil {
		t.Fatal(err)
	}
	wide, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if e := raw.Tensors["w.bf16"]; e.F32 != nil || len(e.Raw) != 12 {
		t.Errorf("raw BF16: %d float32, %d raw bytes", len(e.F32), len(e.Raw))
	}
	if e := raw.Tensors["w.i8"]; e.I64 != nil || len(e.Raw) != 6 {
		t.Errorf("raw I8: %d int64, %d raw bytes", len(e.I64), len(e.Raw))
	}
	for name, file := range map[string]*File{"ReadRaw": raw, "Read": wide} {
		got, err := file.Tensors["w.bf16"].BF16s("w.bf16")
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range bf {
			if got[i] != v {
				t.Errorf("%s: bf16[%d] = %#x, want %#x", name, i, got[i], v)
			}
		}
		codes, err := file.Tensors["w.i8"].Int8s("w.i8")
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range i8 {
			if codes[i] != v {
				t.Errorf("%s: i8[%d] = %d, want %d", name, i, codes[i], v)
			}
		}
		x, err := file.Tensor("w.bf16")
		if err != nil || x.Data[0] != 1 || x.Data[1] != -1 {
			t.Errorf("%s: Tensor(w.bf16) = %v, %v", name, x, err)
		}
		if v := file.Tensors["w.i8"].Int64s(); v[0] != -127 || v[5] != -128 {
			t.Errorf("%s: Int64s(w.i8) = %v", name, v)
		}
	}
	if _, err := raw.Tensors["w.scale"].Int8s("w.scale"); err == nil {
		t.Error("Int8s of an F32 entry: no error")
	}
	a, _ := Marshal(f)
	b, err := Marshal(raw)
	if err != nil || !bytes.Equal(a, b) {
		t.Errorf("rewriting a raw read: %v, same bytes %v", err, bytes.Equal(a, b))
	}
	c, err := Marshal(wide)
	if err != nil || !bytes.Equal(a, c) {
		t.Errorf("rewriting a widened read: %v, same bytes %v", err, bytes.Equal(a, c))
	}
	h, err := ReadHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	if e := h.Tensors["w.i8"]; len(h.Tensors) != 3 || e.DType != "I8" || e.Shape[0] != 3 || e.Shape[1] != 2 || e.Raw != nil || e.I64 != nil {
		t.Errorf("ReadHeader: %d tensors, w.i8 %+v", len(h.Tensors), e)
	}
	bad := &File{Tensors: map[string]*Entry{"x": {Shape: []int{2}, Raw: []byte{1, 2}}}}
	if _, err := Marshal(bad); err == nil {
		t.Error("raw bytes without a dtype: no error")
	}
}

// TestRelease: releasing the entries of a file read whole, one after the
// other, leaves the others' values intact (whole pages only are given
// back, and a tensor's pages are its own), drops the released entry's
// values (Tensor then reports them missing, no zeros), and keeps its dtype
// and shape.
func TestRelease(t *testing.T) {
	f := NewFile()
	sizes := []int{10000, 3, 4096, 777, 20000} // spans of many pages, of part of one, unaligned
	want := map[string][]float32{}
	for i, n := range sizes {
		v := make([]float32, n)
		for j := range v {
			v[j] = float32(i*100000 + j + 1)
		}
		name := string(rune('a' + i))
		want[name] = v
		f.Tensors[name] = &Entry{DType: "F32", Shape: []int{n}, F32: v}
	}
	bf := make([]uint16, 9000)
	for j := range bf {
		bf[j] = uint16(0x3f80 + j%64)
	}
	f.Tensors["q"] = NewBF16Entry([]int{9000}, bf)
	path := filepath.Join(t.TempDir(), "r.safetensors")
	if err := Write(path, f); err != nil {
		t.Fatal(err)
	}
	r, err := ReadRaw(path)
	if err != nil {
		t.Fatal(err)
	}
	check := func(stage string) {
		for name, v := range want {
			e := r.Tensors[name]
			if e.F32 == nil {
				continue // released
			}
			for j, x := range v {
				if e.F32[j] != x {
					t.Fatalf("%s: %s[%d] = %v, want %v", stage, name, j, e.F32[j], x)
				}
			}
		}
		if q := r.Tensors["q"]; q.Raw != nil {
			got, err := q.BF16s("q")
			if err != nil || !slices.Equal(got, bf) {
				t.Fatalf("%s: bf16 entry changed (%v)", stage, err)
			}
		}
	}
	for _, name := range []string{"a", "q", "c", "e"} {
		r.Tensors[name].Release()
		check("after releasing " + name)
	}
	e := r.Tensors["a"]
	if e.DType != "F32" || len(e.Shape) != 1 || e.Shape[0] != 10000 {
		t.Errorf("released entry lost its dtype or shape: %s %v", e.DType, e.Shape)
	}
	if _, err := e.Tensor("a"); err == nil {
		t.Error("a released entry still gave a tensor")
	}
}
