package checkpoint

import (
	"archive/zip"
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// pthWriteFixture holds every dtype the writer maps to a torch storage and
// the shapes a state dict meets: 0-d counters, vectors, matrices, 4-d
// convolution weights and an empty tensor.
func pthWriteFixture() *File {
	f := NewFile()
	seq := func(n int, scale float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = scale * float32(i-n/3)
		}
		return v
	}
	f.Tensors["blocks.0.attn.qkv.weight"] = &Entry{DType: "F32", Shape: []int{6, 2}, F32: seq(12, 0.25)}
	f.Tensors["patch_embed.proj.weight"] = &Entry{DType: "F32", Shape: []int{2, 3, 2, 2}, F32: seq(24, -1.5)}
	f.Tensors["norm.alpha"] = &Entry{DType: "F32", Shape: []int{1}, F32: []float32{0.75}}
	f.Tensors["norm.iter"] = &Entry{DType: "I64", Shape: []int{}, I64: []int64{0}}
	f.Tensors["norm.total_step"] = &Entry{DType: "I64", Shape: []int{}, I64: []int64{300000}}
	f.Tensors["norm.bn.num_batches_tracked"] = &Entry{DType: "I64", Shape: []int{}, I64: []int64{1 << 40}}
	f.Tensors["neg"] = &Entry{DType: "I64", Shape: []int{3}, I64: []int64{-1, -70000, 1<<31 + 5}}
	f.Tensors["half"] = &Entry{DType: "F16", Shape: []int{2}, F32: []float32{1.5, -0.125}}
	f.Tensors["bf"] = &Entry{DType: "BF16", Shape: []int{2}, F32: []float32{2, -3}}
	f.Tensors["dbl"] = &Entry{DType: "F64", Shape: []int{1, 2}, F32: []float32{0.1, 7}}
	f.Tensors["mask"] = &Entry{DType: "BOOL", Shape: []int{2}, I64: []int64{1, 0}}
	f.Tensors["small"] = &Entry{DType: "I32", Shape: []int{2}, I64: []int64{-5, 9}}
	f.Tensors["empty"] = &Entry{DType: "F32", Shape: []int{0, 4}, F32: []float32{}}
	f.Tensors[strings.Repeat("k", 300)] = &Entry{DType: "F32", Shape: []int{70000}, F32: seq(70000, 1e-3)}
	return f
}

// TestWritePTHRoundTrip reads back what WritePTH writes (bare and wrapped
// under "model", from memory and from disk): every name, dtype, shape and
// value must come back exactly; storages must start 64-byte aligned and
// the bytes must not depend on map order.
func TestWritePTHRoundTrip(t *testing.T) {
	f := pthWriteFixture()
	for _, wrap := range []string{"", "model"} {
		b, err := MarshalPTH(f, wrap)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := MarshalPTH(pthWriteFixture(), wrap)
		if !bytes.Equal(b, b2) {
			t.Errorf("wrap %q: two encodings of the same File differ", wrap)
		}
		g, err := ReadPTHBytes(b, "mem", "")
		if err != nil {
			t.Fatalf("wrap %q: %v", wrap, err)
		}
		checkSame(t, "wrap "+wrap, f, g)
		if got := g.Metadata["pth.state_dict_key"]; got != wrap {
			t.Errorf("wrap %q: read as state dict key %q", wrap, got)
		}
		path := filepath.Join(t.TempDir(), "x.pth")
		if err := WritePTH(path, f, wrap); err != nil {
			t.Fatal(err)
		}
		h, err := ReadPTH(path)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, "file wrap "+wrap, f, h)

		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, zf := range zr.File {
			names = append(names, zf.Name)
			off, err := zf.DataOffset()
			if err != nil || off%pthAlign != 0 || zf.Method != zip.Store {
				t.Errorf("member %s: data offset %d (err %v), method %d: want stored, %d-aligned", zf.Name, off, err, zf.Method, pthAlign)
			}
		}
		if names[0] != "archive/data.pkl" || names[len(names)-2] != "archive/version" || names[len(names)-1] != "archive/byteorder" {
			t.Errorf("members %v", names)
		}
		t.Logf("wrap %q: %d bytes, %d members", wrap, len(b), len(names))
	}
}

func checkSame(t *testing.T, label string, want, got *File) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Errorf("%s: %d tensors, want %d", label, len(got.Tensors), len(want.Tensors))
	}
	for name, w := range want.Tensors {
		g := got.Tensors[name]
		if g == nil {
			t.Errorf("%s: %q missing", label, name)
			continue
		}
		if g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) || !reflect.DeepEqual(g.F32, w.F32) || !reflect.DeepEqual(g.I64, w.I64) {
			t.Errorf("%s: %q read back as %s %v, want %s %v", label, name, g.DType, g.Shape, w.DType, w.Shape)
		}
	}
}

// TestWritePTHErrors: inconsistent entries are refused naming the tensor.
func TestWritePTHErrors(t *testing.T) {
	for _, c := range []struct {
		e    *Entry
		want string
	}{
		{&Entry{DType: "F32", Shape: []int{3}, F32: []float32{1}}, "holds 3 values"},
		{&Entry{DType: "Q8", Shape: []int{1}, F32: []float32{1}}, "unknown dtype"},
		{&Entry{DType: "I64", Shape: []int{1}, F32: []float32{1}}, "only float values"},
		{nil, "is nil"},
	} {
		f := NewFile()
		f.Tensors["bad.weight"] = c.e
		_, err := MarshalPTH(f, "")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.weight") {
			t.Errorf("%v: error %v, want one naming bad.weight and saying %q", c.e, err, c.want)
		}
	}
}
