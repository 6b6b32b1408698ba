package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type expTensor struct {
	DType  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

func loadExpected(t *testing.T) map[string]map[string]expTensor {
	t.Helper()
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var exp map[string]map[string]expTensor
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

var torchDType = map[string]string{"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64", "int64": "I64"}

// compareSD checks every expected tensor: dtype, shape and values (float
// values exactly, since float32 holds every F16/BF16/F32 value and the
// expected F64 values are rounded like the reader rounds them).
func compareSD(t *testing.T, label string, f *File, exp map[string]expTensor) {
	t.Helper()
	if len(f.Tensors) != len(exp) {
		t.Errorf("%s: %d tensors (%v), want %d", label, len(f.Tensors), f.Names(), len(exp))
	}
	for name, want := range exp {
		got := f.Tensors[name]
		if got == nil {
			t.Errorf("%s: tensor %q missing", label, name)
			continue
		}
		if got.DType != torchDType[want.DType] || !reflect.DeepEqual(append([]int{}, got.Shape...), append([]int{}, want.Shape...)) {
			t.Errorf("%s %s: %s %v, want %s %v", label, name, got.DType, got.Shape, want.DType, want.Shape)
			continue
		}
		maxd := 0.0
		for i, w := range want.Values {
			var g float64
			if got.I64 != nil {
				g = float64(got.I64[i])
			} else {
				g = float64(got.F32[i])
				w = float64(float32(w))
			}
			maxd = math.Max(maxd, math.Abs(g-w))
		}
		if got.Numel() != len(want.Values) || maxd != 0 {
			t.Errorf("%s %s: %d values, max abs diff %g", label, name, got.Numel(), maxd)
		}
	}
}

func TestReadPTHFixtures(t *testing.T) {
	exp := loadExpected(t)
	cases := []struct {
		file, key, wantKey string
		exp                string
		meta               map[string]string
	}{
		{"nested.pth", "", "model", "sd", map[string]string{"epoch": "3", "max_accuracy": "81.5", "note": "fixture"}},
		{"legacy.pth", "", "model", "sd", map[string]string{"epoch": "3", "max_accuracy": "81.5", "note": "fixture"}},
		{"plain.pth", "", "", "sd", nil},
		{"proto4.pth", "", "", "sd", nil},
		{"module.pth", "", "", "module", nil},
		{"ema.pth", "", "model", "sd", nil},
		{"ema.pth", "model_ema", "model_ema", "ema", nil},
	}
	for _, c := range cases {
		f, err := ReadPTHKey(filepath.Join("testdata", c.file), c.key)
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		compareSD(t, c.file+"["+c.key+"]", f, exp[c.exp])
		// ReadPTHKey views the file buffer; ReadPTHBytes copies: same result.
		raw, _ := os.ReadFile(filepath.Join("testdata", c.file))
		if g, err := ReadPTHBytes(raw, c.file, c.key); err != nil || !reflect.DeepEqual(f, g) {
			t.Errorf("%s: ReadPTHBytes differs from ReadPTHKey (%v)", c.file, err)
		}
		if got := f.Metadata["pth.state_dict_key"]; got != c.wantKey {
			t.Errorf("%s: state dict key %q, want %q", c.file, got, c.wantKey)
		}
		for k, v := range c.meta {
			if f.Metadata[k] != v {
				t.Errorf("%s: metadata %s = %q, want %q", c.file, k, f.Metadata[k], v)
			}
		}
		t.Logf("%-10s key %-9q %2d tensors, metadata %v", c.file, c.key, len(f.Tensors), f.Metadata)
	}
	// The shared storage is decoded once, but entries must not alias it:
	// writing into one tensor must not change another.
	f, err := ReadPTH("testdata/nested.pth")
	if err != nil {
		t.Fatal(err)
	}
	f.Tensors["share.all"].F32[6] = 100
	if f.Tensors["share.col"].F32[1] != 6 || f.Tensors["share.row"].F32[2] != 6 {
		t.Error("tensors sharing a storage alias each other")
	}
	// A .pth converts to safetensors losslessly.
	b, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ReadBytes(b, "converted")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Tensors["wbf16"], f.Tensors["wbf16"]) || !reflect.DeepEqual(g.Tensors["blocks.0.norm1.iter"], f.Tensors["blocks.0.norm1.iter"]) {
		t.Error("pth -> safetensors round trip changed values")
	}
}

// rezip rewrites a zip archive, letting edit change or drop members.
func rezip(t *testing.T, b []byte, edit func(name string, data []byte) ([]byte, bool)) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, zf := range zr.File {
		r, _ := zf.Open()
		var d bytes.Buffer
		d.ReadFrom(r)
		r.Close()
		nd, keep := edit(zf.Name, d.Bytes())
		if !keep {
			continue
		}
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: zf.Name, Method: zip.Store})
		w.Write(nd)
	}
	zw.Close()
	return out.Bytes()
}

func TestReadPTHErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/nested.pth")
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := os.ReadFile("testdata/legacy.pth")
	cases := []struct {
		name string
		b    []byte
		key  string
		want string
	}{
		{"empty", nil, "", "bad magic"},
		{"text", []byte("hello world"), "", "bad magic"},
		{"truncated zip", good[:len(good)/2], "", "zip"},
		{"truncated legacy", legacy[:len(legacy)-10], "", "truncated"},
		{"legacy pickle cut", legacy[:200], "", "truncated"},
		{"missing key", good, "nope", `no state dict under key "nope"`},
		{"no data.pkl", rezip(t, good, func(n string, d []byte) ([]byte, bool) { return d, !strings.HasSuffix(n, "data.pkl") }), "", "no data.pkl"},
		{"storage missing", rezip(t, good, func(n string, d []byte) ([]byte, bool) { return d, !strings.HasSuffix(n, "data/0") }), "", "storage 0: missing"},
		{"storage short", rezip(t, good, func(n string, d []byte) ([]byte, bool) {
			if strings.HasSuffix(n, "data/0") {
				return d[:len(d)-4], true
			}
			return d, true
		}), "", "storage 0"},
		{"pickle cut", rezip(t, good, func(n string, d []byte) ([]byte, bool) {
			if strings.HasSuffix(n, "data.pkl") {
				return d[:len(d)/2], true
			}
			return d, true
		}), "", "data.pkl"},
	}
	for _, c := range cases {
		_, err := ReadPTHBytes(c.b, "ck.pth", c.key)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "ck.pth") {
			t.Errorf("%s: error %q lacks %q or the file name", c.name, err, c.want)
		}
	}
	// A flipped bit in a stored tensor fails the CRC check.
	zr, _ := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "data/0") {
			off, _ := zf.DataOffset()
			bad := append([]byte(nil), good...)
			bad[off+3] ^= 1
			if _, err := ReadPTHBytes(bad, "ck.pth", ""); err == nil || !strings.Contains(err.Error(), "CRC") {
				t.Errorf("flipped bit: %v", err)
			}
		}
	}
	// PyTorch >= 2.1 adds a byteorder record.
	for _, c := range []struct{ order, want string }{{"little", ""}, {"big", "byte order"}} {
		b := withMember(t, good, "nested/byteorder", []byte(c.order))
		_, err := ReadPTHBytes(b, "ck.pth", "")
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("byteorder %s: %v", c.order, err)
		}
	}
	if _, err := ReadPTH("testdata/absent.pth"); err == nil || !strings.Contains(err.Error(), "absent.pth") {
		t.Errorf("missing file: %v", err)
	}
}

// TestPickleVM runs hand-assembled pickles through the VM.
func TestPickleVM(t *testing.T) {
	cases := []struct {
		name string
		p    string
		want any
		err  string
	}{
		{"int", "\x80\x02K\x05.", int64(5), ""},
		{"neg binint", "J\xff\xff\xff\xff.", int64(-1), ""},
		{"long1", "\x8a\x02\x00\x80.", int64(-32768), ""},
		{"text int", "I42\n.", int64(42), ""},
		{"float", "G@\x04\x00\x00\x00\x00\x00\x00.", 2.5, ""},
		{"unicode", "X\x02\x00\x00\x00hi.", "hi", ""},
		{"tuple", "K\x01K\x02\x86.", pyTuple{int64(1), int64(2)}, ""},
		{"memo", "K\x07q\x00h\x00\x86.", pyTuple{int64(7), int64(7)}, ""},
		{"huge length", "X\xff\xff\xff\xff.", nil, "exceeds"},
		{"huge length8", "\x8d\xff\xff\xff\xff\xff\xff\xff\xff.", nil, "exceeds"},
		{"underflow", "\x86.", nil, "underflow"},
		{"odd setitems", "}(K\x01u.", nil, "odd"},
		{"no mark", "t.", nil, "MARK"},
		{"bad memo", "h\x03.", nil, "memo"},
		{"no stop", "K\x01", nil, "truncated"},
		{"unknown op", "\xff.", nil, "unsupported"},
		{"call non-global", "K\x01)R.", nil, "cannot call"},
		{"wide long", "\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01.", nil, "too large"},
		{"mark floor", "K\x01(\x86.", nil, "underflow"},
	}
	for _, c := range cases {
		u := &unpickler{b: []byte(c.p)}
		v, err := u.run()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(v, c.want) {
			t.Errorf("%s: %#v, %v; want %#v", c.name, v, err, c.want)
		}
	}
	// An unknown global is inert: REDUCE yields an opaque object, BUILD
	// stores its state; nothing runs.
	u := &unpickler{b: []byte("cos\nsystem\nX\x02\x00\x00\x00ls\x85R}b.")}
	v, err := u.run()
	if o, ok := v.(*pyObject); err != nil || !ok || o.class.name != "system" {
		t.Errorf("opaque object: %#v %v", v, err)
	}
}

// withMember returns the archive b with one more member.
func withMember(t *testing.T, b []byte, name string, data []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, zf := range zr.File {
		if err := zw.Copy(zf); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := zw.Create(name)
	w.Write(data)
	zw.Close()
	return out.Bytes()
}

// withPickle replaces nested.pth's data.pkl (keeping its storages).
func withPickle(t *testing.T, pkl []byte) []byte {
	good, err := os.ReadFile("testdata/nested.pth")
	if err != nil {
		t.Fatal(err)
	}
	return rezip(t, good, func(n string, d []byte) ([]byte, bool) {
		if strings.HasSuffix(n, "data.pkl") {
			return pkl, true
		}
		return d, true
	})
}

// TestReadPTHAmplification feeds pickles that reference one object many
// times through the memo: they must fail fast, not expand.
func TestReadPTHAmplification(t *testing.T) {
	// 30 levels of {"a": d, "b": d}: 2^30 names from ~500 bytes.
	var dag bytes.Buffer
	dag.WriteString("\x80\x02}q\x00")
	for i := 1; i <= 30; i++ {
		dag.WriteString("}(X\x01\x00\x00\x00ah" + string(rune(i-1)) + "X\x01\x00\x00\x00bh" + string(rune(i-1)) + "uq" + string(rune(i)))
	}
	dag.WriteString(".")
	// One zero-stride tensor of 2^20 elements under 200 names.
	var wide bytes.Buffer
	wide.WriteString("\x80\x02}(X\x04\x00\x00\x00k000")
	wide.WriteString("ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x0ctQK\x00J\x00\x00\x10\x00\x85K\x00\x85\x89ccollections\nOrderedDict\n)RtRq\x00")
	for i := 1; i < 200; i++ {
		wide.WriteString(fmt.Sprintf("X\x04\x00\x00\x00k%03dh\x00", i))
	}
	wide.WriteString("u.")
	cases := []struct {
		name string
		pkl  []byte
		want string
	}{
		{"dict DAG", dag.Bytes(), "too many state dict entries"},
		{"tensor refs", wide.Bytes(), "far more elements"},
	}
	for _, c := range cases {
		t0 := time.Now()
		_, err := ReadPTHBytes(withPickle(t, c.pkl), "amp.pth", "")
		el := time.Since(t0)
		t.Logf("%s: %v in %v", c.name, err, el)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		if el > 5*time.Second {
			t.Errorf("%s took %v", c.name, el)
		}
	}
}

// TestDescribeNested: error messages stay short for self-similar values.
func TestDescribeNested(t *testing.T) {
	var v any = int64(1)
	for i := 0; i < 40; i++ {
		v = pyTuple{v, v, v, v, v, v, v, v}
	}
	t0 := time.Now()
	s := describe(v)
	if len(s) > 1000 || time.Since(t0) > time.Second {
		t.Errorf("describe: %d chars in %v", len(s), time.Since(t0))
	}
}
