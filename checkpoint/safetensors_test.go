package checkpoint

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rawST builds a safetensors image from a literal header and data.
func rawST(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func sampleFile() *File {
	f := NewFile()
	f.Tensors["w"] = &Entry{Shape: []int{2, 3}, F32: []float32{1, -2, 3.5, 0, 1e-3, -7}}
	f.Tensors["h"] = &Entry{DType: "F16", Shape: []int{3}, F32: []float32{0.5, -1, 65504}}
	f.Tensors["b"] = &Entry{DType: "BF16", Shape: []int{2}, F32: []float32{1.5, -256}}
	f.Tensors["d"] = &Entry{DType: "F64", Shape: []int{1}, F32: []float32{0.1}}
	f.SetInt64("iter", []int64{1 << 40})
	f.Tensors["iter"].Shape = nil // 0-d scalar
	f.Tensors["n"] = &Entry{DType: "I64", Shape: []int{2}, I64: []int64{-3, 9}}
	f.Tensors["empty"] = &Entry{Shape: []int{0, 4}, F32: []float32{}}
	f.Metadata["config"] = `{"model":"slab_deit_tiny"}`
	f.Metadata["step"] = "42"
	return f
}

func TestSafetensorsRoundTrip(t *testing.T) {
	f := sampleFile()
	b, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	hl := binary.LittleEndian.Uint64(b)
	if (8+hl)%8 != 0 {
		t.Errorf("data section starts at %d, not 8-aligned", 8+hl)
	}
	g, err := ReadBytes(b, "mem")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Metadata, f.Metadata) {
		t.Errorf("metadata %v, want %v", g.Metadata, f.Metadata)
	}
	if len(g.Tensors) != len(f.Tensors) {
		t.Fatalf("%d tensors, want %d", len(g.Tensors), len(f.Tensors))
	}
	for _, name := range f.Names() {
		want, got := f.Tensors[name], g.Tensors[name]
		if got == nil {
			t.Fatalf("tensor %q missing", name)
		}
		wdt, _ := want.writeDType()
		if got.DType != wdt || !reflect.DeepEqual(append([]int{}, got.Shape...), append([]int{}, want.Shape...)) {
			t.Errorf("%s: %s %v, want %s %v", name, got.DType, got.Shape, wdt, want.Shape)
		}
		if want.I64 != nil {
			if !reflect.DeepEqual(got.I64, want.I64) {
				t.Errorf("%s: %v, want %v", name, got.I64, want.I64)
			}
			continue
		}
		maxd := 0.0
		for i := range want.F32 {
			maxd = math.Max(maxd, math.Abs(float64(got.F32[i]-want.F32[i])))
		}
		t.Logf("%-5s %-4s max abs diff %.3g", name, got.DType, maxd)
		if maxd > 1e-8 { // all sample values are exact in their dtype but 0.1 in F64 -> F32
			t.Errorf("%s: got %v, want %v", name, got.F32, want.F32)
		}
	}
	// Determinism: same File, same bytes; a re-encode of what was read too.
	b2, _ := Marshal(f)
	b3, _ := Marshal(g)
	if !bytes.Equal(b, b2) || !bytes.Equal(b, b3) {
		t.Error("encoding is not deterministic")
	}
}

func TestSafetensorsReadHandmade(t *testing.T) {
	// Written independently of Encode: a reversed key order, no padding, an
	// explicit I32 and U8 tensor.
	data := append(f32bytes(1, 2, 3, 4), 7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 200)
	hdr := `{"u":{"dtype":"U8","shape":[1],"data_offsets":[24,25]},"i":{"dtype":"I32","shape":[2],"data_offsets":[16,24]},"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`
	f, err := ReadBytes(rawST(hdr, data), "hand")
	if err != nil {
		t.Fatal(err)
	}
	x, err := f.Tensor("x")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x.Shape, []int{2, 2}) || !reflect.DeepEqual(x.Data, []float32{1, 2, 3, 4}) {
		t.Errorf("x = %v %v", x.Shape, x.Data)
	}
	if got := f.Tensors["i"].I64; !reflect.DeepEqual(got, []int64{7, -1}) {
		t.Errorf("i = %v", got)
	}
	if got := f.Tensors["u"].I64; !reflect.DeepEqual(got, []int64{200}) {
		t.Errorf("u = %v", got)
	}
	if len(f.Metadata) != 0 {
		t.Errorf("metadata %v, want empty", f.Metadata)
	}
}

func TestSafetensorsErrors(t *testing.T) {
	good := rawST(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32bytes(1, 2))
	absurd := make([]byte, 16)
	binary.LittleEndian.PutUint64(absurd, 1<<62)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"absurd header", absurd, "absurd"},
		{"header past end", good[:20], "exceeds"},
		{"data truncated", good[:len(good)-1], "outside"},
		{"bad json", rawST(`{"x":`, nil), "bad JSON"},
		{"not object", rawST(`[1,2]`, nil), "bad JSON"},
		{"null", rawST(`null`, nil), "not a JSON object"},
		{"trailing", rawST(`{} x`, nil), "trailing"},
		{"unknown dtype", rawST(`{"x":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}), `tensor "x": unknown dtype`},
		{"size mismatch", rawST(`{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32bytes(1, 2)), "needs 12 bytes"},
		{"reversed offsets", rawST(`{"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f32bytes(1, 2)), "outside"},
		{"negative offset", rawST(`{"x":{"dtype":"F32","shape":[0],"data_offsets":[-4,0]}}`, f32bytes(1, 2)), "outside"},
		{"one offset", rawST(`{"x":{"dtype":"F32","shape":[0],"data_offsets":[0]}}`, nil), "want 2"},
		{"negative dim", rawST(`{"x":{"dtype":"F32","shape":[-1,-2],"data_offsets":[0,8]}}`, f32bytes(1, 2)), "negative"},
		{"overflow shape", rawST(`{"x":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}`, f32bytes(1, 2)), "does not fit"},
		{"bad metadata", rawST(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"bad entry", rawST(`{"x":3}`, nil), `tensor "x": bad header`},
	}
	for _, c := range cases {
		_, err := ReadBytes(c.b, "f.safetensors")
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "f.safetensors") {
			t.Errorf("%s: error %q lacks %q or the file name", c.name, err, c.want)
		}
	}
	if _, err := ReadBytes(good, "good"); err != nil {
		t.Errorf("good file: %v", err)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing.safetensors")); err == nil || !strings.Contains(err.Error(), "missing.safetensors") {
		t.Errorf("missing file: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		e    *Entry
		want string
	}{
		{"count", &Entry{Shape: []int{3}, F32: []float32{1}}, "holds 3 values"},
		{"dtype", &Entry{DType: "Q4", F32: []float32{1}}, "unknown dtype"},
		{"float dtype int data", &Entry{DType: "F16", I64: []int64{1}}, "only integer"},
		{"int dtype float data", &Entry{DType: "I64", F32: []float32{1}}, "only float"},
		{"negative", &Entry{Shape: []int{-1}, F32: []float32{}}, "negative"},
	}
	for _, c := range cases {
		f := NewFile()
		f.Tensors["bad.t"] = c.e
		_, err := Marshal(f)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.t") {
			t.Errorf("%s: error %v, want %q naming the tensor", c.name, err, c.want)
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ck.safetensors")
	if err := Write(path, sampleFile()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	// A failing encode must leave the old file intact and no temp file.
	bad := NewFile()
	bad.Tensors["x"] = &Entry{Shape: []int{5}, F32: []float32{1}}
	if err := Write(path, bad); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad write: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("failed write changed the existing file")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want 1", len(ents))
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["step"] != "42" || f.Tensors["iter"].I64[0] != 1<<40 {
		t.Errorf("read back %v %v", f.Metadata, f.Tensors["iter"])
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if err := Write(filepath.Join(dir, "no", "such", "dir.safetensors"), sampleFile()); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestHalfConversions(t *testing.T) {
	// Every finite half survives a round trip through float32 exactly.
	for h := 0; h < 1<<16; h++ {
		f := HalfToFloat32(uint16(h))
		if f != f {
			continue
		}
		if back := Float32ToHalf(f); back != uint16(h) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, back)
		}
	}
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, // ties to even: overflow to Inf
		{1 + 1.0/2048, 0x3c00},           // tie between 1 and next: even (1)
		{1 + 3.0/2048, 0x3c02},           // tie: round up to even
		{5.960464477539063e-08, 0x0001},  // smallest subnormal
		{2.9802322387695312e-08, 0x0000}, // half of it: tie to even zero
		{float32(math.Inf(-1)), 0xfc00},
		{6.103515625e-05, 0x0400}, // smallest normal
	}
	for _, c := range cases {
		if got := Float32ToHalf(c.in); got != c.want {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if h := Float32ToHalf(float32(math.NaN())); HalfToFloat32(h) == HalfToFloat32(h) {
		t.Error("NaN not preserved in half")
	}
	bcases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80}, {-256, 0xc380}, {1 + 1.0/256, 0x3f80}, {1 + 3.0/256, 0x3f82}, {float32(math.Inf(1)), 0x7f80},
	}
	for _, c := range bcases {
		if got := Float32ToBFloat16(c.in); got != c.want {
			t.Errorf("Float32ToBFloat16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
		if got := BFloat16ToFloat32(Float32ToBFloat16(c.in)); c.want&0x7f == 0 && got != c.in && c.in == float32(int(c.in)) {
			t.Errorf("bf16 round trip %g -> %g", c.in, got)
		}
	}
	if h := Float32ToBFloat16(float32(math.NaN())); BFloat16ToFloat32(h) == BFloat16ToFloat32(h) {
		t.Error("NaN not preserved in bf16")
	}
}

func TestSafetensorsOverlapAndAlias(t *testing.T) {
	hdr := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`
	if _, err := ReadBytes(rawST(hdr, f32bytes(1, 2, 3)), "ov"); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlapping tensors: %v", err)
	}
	// Read may view the file buffer; entries must still be independent and
	// equal to what ReadBytes copies.
	path := filepath.Join(t.TempDir(), "a.safetensors")
	if err := Write(path, sampleFile()); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	g, _ := ReadBytes(b, "copy")
	for _, n := range f.Names() {
		if !reflect.DeepEqual(f.Tensors[n], g.Tensors[n]) {
			t.Errorf("%s: Read and ReadBytes differ", n)
		}
	}
	w := f.Tensors["w"].F32
	w = append(w, 99) // must not spill into the next tensor
	if f.Tensors["w"].F32[0] != 1 || len(w) != 7 {
		t.Error("append to an aliased entry misbehaved")
	}
}
