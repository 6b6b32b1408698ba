package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/slabml/slab/bench"
	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// writeTestPTH writes state as torch.save would ({"model": OrderedDict,
// "epoch": 3} when wrap): a zip holding a protocol-2 data.pkl with
// _rebuild_tensor_v2 calls and one storage per tensor. checkpoint's own
// tests read real torch output; this only feeds the CLI.
func writeTestPTH(t *testing.T, path string, state map[string]*checkpoint.Entry, wrap bool) {
	t.Helper()
	names := make([]string, 0, len(state))
	for n := range state {
		names = append(names, n)
	}
	sort.Strings(names)
	var p bytes.Buffer
	str := func(s string) {
		p.WriteByte('X')
		binary.Write(&p, binary.LittleEndian, uint32(len(s)))
		p.WriteString(s)
	}
	num := func(v int) {
		p.WriteByte('J')
		binary.Write(&p, binary.LittleEndian, int32(v))
	}
	p.WriteString("\x80\x02")
	if wrap {
		p.WriteString("}(")
		str("model")
	}
	p.WriteString("ccollections\nOrderedDict\n)R(")
	storages := map[string][]byte{}
	for i, n := range names {
		e := state[n]
		key := strconv.Itoa(i)
		var raw bytes.Buffer
		cls := "FloatStorage"
		if e.I64 != nil {
			cls = "LongStorage"
			binary.Write(&raw, binary.LittleEndian, e.I64)
		} else {
			binary.Write(&raw, binary.LittleEndian, e.F32)
		}
		storages[key] = raw.Bytes()
		str(n)
		p.WriteString("ctorch._utils\n_rebuild_tensor_v2\n(")
		p.WriteString("(")
		str("storage")
		p.WriteString("ctorch\n" + cls + "\n")
		str(key)
		str("cpu")
		num(e.Numel())
		p.WriteString("tQ")
		num(0)
		p.WriteString("(")
		for _, d := range e.Shape {
			num(d)
		}
		p.WriteString("t(")
		stride := 1
		strides := make([]int, len(e.Shape))
		for d := len(e.Shape) - 1; d >= 0; d-- {
			strides[d] = stride
			stride *= e.Shape[d]
		}
		for _, s := range strides {
			num(s)
		}
		p.WriteString("t\x89ccollections\nOrderedDict\n)RtR")
	}
	p.WriteString("u")
	if wrap {
		str("epoch")
		p.WriteString("K\x03u")
	}
	p.WriteString(".")
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	add := func(name string, b []byte) {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		w.Write(b)
	}
	add("data.pkl", p.Bytes())
	for k, b := range storages {
		add("data/"+k, b)
	}
	add("version", []byte("3\n"))
	zw.Close()
	if err := os.WriteFile(path, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// officialModel is a registry model with non-trivial BN statistics and a
// finished PRepBN schedule, as a released checkpoint would have.
func officialModel(t *testing.T, name string) *vit.Model {
	t.Helper()
	cfg, err := vit.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := vit.New(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	bench.RandomizeBuffers(m, 3)
	for _, b := range m.Buffers() {
		if b.I != nil && strings.HasSuffix(b.Name, ".iter") {
			*b.I = 0
		}
	}
	return m
}

func randomInput(c vit.Config, b int, seed uint64) *tensor.Tensor {
	x := tensor.New(b, c.InChans, c.ImgSize, c.ImgSize)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	return x
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestImportRunClassifyPipeline(t *testing.T) {
	dir := t.TempDir()
	m := officialModel(t, "slab_deit_mini_28")
	pth := filepath.Join(dir, "slab_deit_mini_28.pth")
	writeTestPTH(t, pth, models.StateDict(m), true)
	x := randomInput(m.Cfg, 3, 5)
	y, err := m.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), y.Data...)

	// import: the model name comes from the file name; JSON is one object.
	out := filepath.Join(dir, "imported.safetensors")
	js, err := runIn(t, "import", pth, out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ir importResult
	if err := json.Unmarshal([]byte(js), &ir); err != nil || strings.Count(strings.TrimSpace(js), "\n") != 0 {
		t.Fatalf("import --json printed %q (%v)", js, err)
	}
	if ir.Model != "slab_deit_mini_28" || ir.StateKey != "model" || ir.Fused || ir.Params != models.NumParams(m) {
		t.Errorf("import result %+v", ir)
	}
	if _, err := runIn(t, "import", pth, out); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("import over an existing file: %v", err)
	}
	fused := filepath.Join(dir, "fused.safetensors")
	if js, err = runIn(t, "import", pth, fused, "--fuse", "--json"); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(js), &ir)
	if !ir.Fused || ir.Norm != vit.NormNone {
		t.Errorf("import --fuse result %+v", ir)
	}
	t.Logf("import --fuse: eval logits moved by %.3g", ir.MaxAbsDiff)

	// A safetensors state dict imports too (here: slab's own output).
	if _, err := runIn(t, "import", out, filepath.Join(dir, "again.safetensors"), "--model", "slab_deit_mini_28"); err != nil {
		t.Errorf("import of a safetensors state dict: %v", err)
	}

	// run: the .pth (with --model), the imported and the fused weights all
	// reproduce the original model's eval logits.
	in := filepath.Join(dir, "x.safetensors")
	xf := checkpoint.NewFile()
	xf.Set("input", x)
	if err := checkpoint.Write(in, xf); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		weights []string
		tol     float64
	}{
		// Not bit-exact: --batch 2 splits the GEMMs differently.
		{[]string{"--weights", pth, "--model", "slab_deit_mini_28"}, 1e-6},
		{[]string{"--weights", out}, 1e-6},
		{[]string{"--weights", out, "--fuse"}, 1e-4},
		{[]string{"--weights", fused}, 1e-4},
	}
	for i, c := range cases {
		o := filepath.Join(dir, "logits"+strconv.Itoa(i)+".safetensors")
		args := append([]string{"run", "--input", in, "--output", o, "--batch", "2", "--json"}, c.weights...)
		if _, err := runIn(t, args...); err != nil {
			t.Errorf("run %v: %v", c.weights, err)
			continue
		}
		f, err := checkpoint.Read(o)
		if err != nil {
			t.Fatal(err)
		}
		got := f.Tensors["logits"]
		d := maxAbsDiff(got.F32, want)
		t.Logf("run %v: logits %v, max abs diff %.3g", c.weights[1:], got.Shape, d)
		if len(got.F32) != len(want) || d > c.tol {
			t.Errorf("run %v: max abs diff %.3g > %g", c.weights, d, c.tol)
		}
	}

	// Errors name what is wrong.
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"import", pth}, "two arguments"},
		{[]string{"import", filepath.Join(dir, "mystery.pth"), filepath.Join(dir, "o.safetensors")}, "--model"},
		{[]string{"import", pth, filepath.Join(dir, "o.safetensors"), "--model", "deit_mini_28"}, "deit_mini_28"},
		{[]string{"import", pth, filepath.Join(dir, "o.safetensors"), "--key", "model_ema"}, "model_ema"},
		{[]string{"import", in, filepath.Join(dir, "o.safetensors"), "--model", "slab_deit_mini_28"}, "missing"},
		{[]string{"import", out, filepath.Join(dir, "o.safetensors"), "--model", "slab_deit_mini_28", "--key", "model"}, "--key"},
		{[]string{"run", "--weights", pth, "--input", in, "--output", filepath.Join(dir, "o.safetensors")}, "--model"},
		{[]string{"run", "--weights", out, "--model", "deit_mini_28", "--input", in, "--output", filepath.Join(dir, "o.safetensors")}, "holds a slab_deit_mini_28"},
		{[]string{"run", "--weights", out, "--input", out, "--output", filepath.Join(dir, "o.safetensors")}, "--tensor"},
		{[]string{"run", "--weights", out, "--input", in, "--tensor", "nope", "--output", filepath.Join(dir, "o.safetensors")}, "nope"},
		{[]string{"run", "--weights", out, "--input", in}, "--output"},
	}
	for _, c := range bad {
		_, err := runIn(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	// A wrongly shaped input.
	xf.Set("input", randomInput(vit.Config{InChans: 3, ImgSize: 28}, 1, 1))
	checkpoint.Write(in, xf)
	if _, err := runIn(t, "run", "--weights", out, "--input", in, "--output", filepath.Join(dir, "o.safetensors")); err == nil || !strings.Contains(err.Error(), "[B,1,28,28]") {
		t.Errorf("bad input shape: %v", err)
	}
}
