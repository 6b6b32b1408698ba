package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/tensor"
)

// TestQuantizeCommand: slab quantize writes bf16 and int8 files that slab
// run reads without --dtype and whose logits equal those of the float32
// file run with --dtype, bit for bit; quantizing a quantized file, an
// existing --out, --group with bf16 or a group that does not divide, a
// --dtype that disagrees with the file and folding the quantized file are
// refused with the flag (and file) named.
func TestQuantizeCommand(t *testing.T) {
	dir := t.TempDir()
	m, err := models.New("slab_deit_mini_28", 3)
	if err != nil {
		t.Fatal(err)
	}
	f32 := filepath.Join(dir, "f32.safetensors")
	mustWriteWeights(t, f32, m)
	in := filepath.Join(dir, "x.safetensors")
	x := tensor.New(3, 1, 28, 28)
	for i := range x.Data {
		x.Data[i] = float32(i%17)/8 - 1
	}
	inf := checkpoint.NewFile()
	inf.Set("input", x)
	if err := checkpoint.Write(in, inf); err != nil {
		t.Fatal(err)
	}
	logits := func(path string) []float32 {
		t.Helper()
		f, err := checkpoint.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		l, err := f.Tensor("logits")
		if err != nil {
			t.Fatal(err)
		}
		return l.Data
	}
	for _, dt := range []string{"bf16", "int8"} {
		q := filepath.Join(dir, dt+".safetensors")
		var r quantizeResult
		oneJSON(t, runLM(t, "quantize", "--weights", f32, "--dtype", dt, "--out", q, "--json"), &r)
		if r.Dtype != dt || r.Linears != 17 || r.BytesOut >= r.BytesIn || r.Family != "vit" {
			t.Fatalf("quantize %s: %+v", dt, r)
		}
		t.Logf("%s: %d -> %d bytes (%.2fx)", dt, r.BytesIn, r.BytesOut, float64(r.BytesOut)/float64(r.BytesIn))
		want, got := filepath.Join(dir, dt+"_mem.safetensors"), filepath.Join(dir, dt+"_file.safetensors")
		runLM(t, "run", "--weights", f32, "--input", in, "--output", want, "--dtype", dt)
		runLM(t, "run", "--weights", q, "--input", in, "--output", got)
		runLM(t, "run", "--weights", q, "--input", in, "--output", got, "--dtype", dt, "--force")
		a, b := logits(want), logits(got)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: logit %d = %v from the quantized file, %v quantized in memory", dt, i, b[i], a[i])
			}
		}
		other := map[string]string{"bf16": "int8", "int8": "bf16"}[dt]
		for _, c := range []struct {
			name string
			args []string
			want []string
		}{
			{"quantize twice", []string{"quantize", "--weights", q, "--dtype", other, "--out", filepath.Join(dir, "twice.safetensors")}, []string{"--weights", q, "already holds " + dt}},
			{"existing --out", []string{"quantize", "--weights", f32, "--dtype", dt, "--out", q}, []string{"--out", "--force"}},
			{"--dtype disagrees", []string{"run", "--weights", q, "--input", in, "--output", filepath.Join(dir, "o.safetensors"), "--dtype", other}, []string{"--dtype", q, "stored as " + dt}},
			{"explicit --dtype f32", []string{"run", "--weights", q, "--input", in, "--output", filepath.Join(dir, "o.safetensors"), "--dtype", "f32"}, []string{"--dtype", q, "stored as " + dt}},
			{"classify --dtype f32", []string{"classify", "--weights", q, "--dtype", "f32", in}, []string{"stored as " + dt}},
			{"fuse", []string{"fuse", "--weights", q, "--out", filepath.Join(dir, "fused.safetensors")}, []string{"--weights", "fold the float32 checkpoint first"}},
			{"eval --fuse", []string{"eval", "--weights", q, "--fuse", "--data-dir", dir}, []string{"fold the float32 checkpoint first"}},
		} {
			stdout, stderr = io.Discard, io.Discard // the loads' warnings
			err := commands[c.args[0]].Run(c.args[1:])
			stdout, stderr = os.Stdout, os.Stderr
			if err == nil {
				t.Errorf("%s %s: no error", dt, c.name)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s %s: %q does not say %q", dt, c.name, err, w)
				}
			}
			t.Logf("%s %s: %v", dt, c.name, err)
		}
	}
	for _, c := range []struct{ args, want []string }{
		{[]string{"--dtype", "bf16", "--group", "32"}, []string{"--group", "bf16"}},
		{[]string{"--dtype", "int8", "--group", "48"}, []string{"--group", "48"}},
		{[]string{"--dtype", "f32"}, []string{"--dtype"}},
		{[]string{"--dtype", "fp8"}, []string{"--dtype"}},
		{[]string{}, []string{"--dtype", "required"}},
	} {
		args := append([]string{"--weights", f32, "--out", filepath.Join(dir, "g.safetensors")}, c.args...)
		err := commands["quantize"].Run(args)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("quantize %v: %v, want it to say %q", c.args, err, w)
			}
		}
	}
	var r quantizeResult
	oneJSON(t, runLM(t, "quantize", "--weights", f32, "--dtype", "int8", "--group", "-1", "--out", filepath.Join(dir, "row.safetensors"), "--json"), &r)
	if r.Group != "varies" { // a scale per row: groups of 64, 256 and 784 inputs
		t.Errorf("--group -1: int8_group %q", r.Group)
	}
}
