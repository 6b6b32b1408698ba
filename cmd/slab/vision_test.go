package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/bench"
)

// runIn runs a subcommand in-process the way main does (panics become
// errors) and returns its stdout.
func runIn(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	stdout, stderr = &out, &errb
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	c, ok := commands[args[0]]
	if !ok {
		t.Fatalf("no command %q", args[0])
	}
	err := run(c, args[1:])
	return out.String(), err
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.safetensors")
	if err := os.WriteFile(existing, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.safetensors")
	if err := os.WriteFile(garbage, []byte("\x08\x00\x00\x00\x00\x00\x00\x00{broken}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string // substring of the error
	}{
		{[]string{"train", "--bogus"}, "-bogus"},
		{[]string{"train", "--epochs", "x", "--out", dir}, "-epochs"},
		{[]string{"train"}, "--out"},
		{[]string{"train", "--out", dir, "--epochs", "0"}, "--epochs"},
		{[]string{"train", "--out", dir, "--lr", "-1"}, "--lr"},
		{[]string{"train", "--out", dir, "--smoothing", "1.5"}, "--smoothing"},
		{[]string{"train", "--out", dir, "--model", "nope"}, "--model"},
		{[]string{"train", "--out", dir, "--norm", "groupnorm"}, "--norm"},
		{[]string{"train", "--out", dir, "--attn", "flash"}, "--attn"},
		{[]string{"train", "--out", dir, "--threads", "-2"}, "--threads"},
		{[]string{"train", "--out", dir, "--drop-path", "1.5"}, "--drop-path"},
		{[]string{"train", "--out", dir, "--resume", garbage}, garbage},
		{[]string{"train", "--out", dir, "--resume", filepath.Join(dir, "missing")}, "missing"},
		{[]string{"eval"}, "--weights"},
		{[]string{"eval", "--weights", garbage}, garbage},
		{[]string{"eval", "--weights", existing, "--batch", "0"}, "--batch"},
		{[]string{"fuse", "--weights", garbage}, "--out"},
		{[]string{"fuse", "--weights", garbage, "--out", existing}, "--force"},
		{[]string{"fuse", "--weights", garbage, "--out", filepath.Join(dir, "new")}, garbage},
		{[]string{"bench"}, "--models"},
		{[]string{"bench", "--models", "nope"}, "--models"},
		{[]string{"bench", "--models", "deit_mini_28", "--batch", "0"}, "--batch"},
		{[]string{"bench", "--models", "deit_mini_28", "--rounds", "0"}, "--rounds"},
		{[]string{"info"}, "MODEL"},
		{[]string{"info", "nope"}, "nope"},
		{[]string{"info", "deit_mini_28", "--size", "30"}, "--size"},
		{[]string{"models", "extra"}, "extra"},
	} {
		out, err := runIn(t, c.args...)
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "internal error") {
			t.Errorf("%v: error %q, want one line mentioning %q", c.args, msg, c.want)
		}
		if out != "" {
			t.Errorf("%v: wrote %q to stdout on error", c.args, out)
		}
		t.Logf("%v -> %v", c.args, msg)
	}
	// -h is not an error.
	if _, err := runIn(t, "train", "-h"); err != nil {
		t.Errorf("train -h: %v", err)
	}
}

func TestInfoAndModelsJSON(t *testing.T) {
	out, err := runIn(t, "info", "slab_deit_mini_28", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r infoResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("info --json printed %q (%v)", out, err)
	}
	var sum int64
	for _, v := range r.FLOPs {
		sum += v
	}
	if r.Params <= 0 || r.Total != sum || r.FLOPs["linear"] <= 0 {
		t.Errorf("info: %+v", r)
	}
	t.Logf("slab_deit_mini_28: %d params, %d FLOPs/image", r.Params, r.Total)
	out, err = runIn(t, "models", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ms struct{ Models []modelEntry }
	if err := json.Unmarshal([]byte(out), &ms); err != nil || len(ms.Models) < 9 {
		t.Fatalf("models --json: %q (%v)", out, err)
	}
}

// writeIDX writes a tiny raw (uncompressed) IDX data set: n 28x28 images
// whose class c is a bright block (see below), plus noise.
func writeIDX(t *testing.T, dir, prefix string, n int, seed byte) {
	t.Helper()
	img := []byte{0, 0, 8, 3, 0, 0, byte(n >> 8), byte(n), 0, 0, 0, 28, 0, 0, 0, 28}
	lab := []byte{0, 0, 8, 1, 0, 0, byte(n >> 8), byte(n)}
	s := uint32(seed) + 1
	for i := 0; i < n; i++ {
		c := i % 10
		lab = append(lab, byte(c))
		for p := 0; p < 28*28; p++ {
			s = s*1664525 + 1013904223
			v := byte(s >> 27) // noise 0..31
			// Mirror-symmetric blocks, so the random flip keeps the class:
			// the row band picks c/2, centre vs sides picks c%2.
			r, col := p/28, p%28
			centre := col >= 10 && col < 18
			if r >= (c/2)*5+2 && r < (c/2)*5+5 && centre == (c%2 == 0) {
				v += 200
			}
			img = append(img, v)
		}
	}
	for name, b := range map[string][]byte{prefix + "-images-idx3-ubyte": img, prefix + "-labels-idx1-ubyte": lab} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readWeights(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	lm, err := loadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, p := range lm.Model.Params() {
		out[p.Name] = p.W.Data
	}
	for _, b := range lm.Model.Buffers() {
		if b.F != nil {
			out[b.Name] = b.F.Data
		} else {
			out[b.Name] = []float32{float32(*b.I)}
		}
	}
	return out
}

// TestTrainResumeFuseEval runs the vision commands end to end on a tiny
// synthetic data set: a straight run equals a run stopped after epoch 1 and
// resumed (every parameter and buffer compared with ==), fusing keeps the
// logits, and eval reports the same accuracy folded and unfolded.
func TestTrainResumeFuseEval(t *testing.T) {
	dir := t.TempDir()
	writeIDX(t, dir, "train", 96, 1)
	writeIDX(t, dir, "t10k", 40, 2)
	common := []string{"--model", "slab_deit_mini_28", "--data-dir", dir, "--epochs", "4", "--batch", "16",
		"--eval-batch", "32", "--lr", "3e-3", "--warmup-epochs", "0.5", "--threads", "2", "--seed", "3", "--json"}
	a := filepath.Join(dir, "a")
	out, err := runIn(t, append([]string{"train", "--out", a}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var ra trainResult
	if err := json.Unmarshal([]byte(out), &ra); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("train --json printed %q (%v)", out, err)
	}
	t.Logf("straight: %d steps, T %d, test loss %.3f acc %.3f (before recal %.3f), lambda %g, %.0f img/s", ra.Steps, ra.ScheduleT, ra.TestLoss, ra.TestAcc, ra.TestAccBefore, ra.Lambda, ra.TrainImgPerSec)
	// 24 steps from scratch only start to learn: require the test loss to
	// have left ln(10) = 2.303, the loss of a uniform guess.
	if ra.Steps != 24 || ra.ScheduleT != 19 || ra.Lambda != 0 || !ra.Finished || ra.Recalibrate != 1 || ra.TestLoss > 2.2 {
		t.Errorf("straight run: %+v", ra)
	}
	b := filepath.Join(dir, "b")
	if _, err := runIn(t, append([]string{"train", "--out", b, "--stop-epoch", "1"}, common...)...); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o755)
	writeIDX(t, other, "train", 80, 1)
	writeIDX(t, other, "t10k", 40, 2)
	if _, err := runIn(t, "train", "--out", b, "--resume", filepath.Join(b, "ckpt.safetensors"), "--data-dir", other); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("resume on a different data set: %v", err)
	}
	out, err = runIn(t, "train", "--out", b, "--resume", filepath.Join(b, "ckpt.safetensors"), "--threads", "2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rb trainResult
	if err := json.Unmarshal([]byte(out), &rb); err != nil {
		t.Fatal(err)
	}
	if rb.ResumedFromStep != 6 || rb.TestAcc != ra.TestAcc {
		t.Errorf("resumed run: from step %d, acc %g (straight %g)", rb.ResumedFromStep, rb.TestAcc, ra.TestAcc)
	}
	wa, wb := readWeights(t, filepath.Join(a, "ckpt.safetensors")), readWeights(t, filepath.Join(b, "ckpt.safetensors"))
	for name, va := range wa {
		vb := wb[name]
		for i := range va {
			if va[i] != vb[i] {
				t.Fatalf("%s[%d]: straight %v, resumed %v", name, i, va[i], vb[i])
			}
		}
	}
	t.Logf("resume: %d tensors identical", len(wa))
	for _, f := range []string{"log.jsonl", "curves.png"} {
		if st, err := os.Stat(filepath.Join(b, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}

	fused := filepath.Join(dir, "fused.safetensors")
	out, err = runIn(t, "fuse", "--weights", filepath.Join(a, "ckpt.safetensors"), "--out", fused, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rf fuseResult
	if err := json.Unmarshal([]byte(out), &rf); err != nil {
		t.Fatal(err)
	}
	t.Logf("fuse: params %d -> %d, max logit diff %.3g (max |logit| %.3g)", rf.Params, rf.FusedParams, rf.MaxAbsDiff, rf.MaxLogit)
	if rf.MaxAbsDiff > 1e-4*max(1, rf.MaxLogit) || rf.FusedParams >= rf.Params {
		t.Errorf("fuse: %+v", rf)
	}
	if _, err := runIn(t, "fuse", "--weights", filepath.Join(a, "ckpt.safetensors"), "--out", fused); err == nil {
		t.Error("fuse overwrote an existing file without --force")
	}
	accs := map[string]float64{}
	for _, w := range []string{filepath.Join(a, "ckpt.safetensors"), fused} {
		out, err = runIn(t, "eval", "--weights", w, "--data-dir", dir, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var re evalResult
		if err := json.Unmarshal([]byte(out), &re); err != nil {
			t.Fatal(err)
		}
		accs[re.Norm] = re.Accuracy
	}
	if accs["prepbn"] != ra.TestAcc || accs["none"] != ra.TestAcc {
		t.Errorf("eval accuracies %v, train reported %g", accs, ra.TestAcc)
	}
}

func TestBenchJSON(t *testing.T) {
	out, err := runIn(t, "bench", "--models", "deit_mini_28,slab_deit_mini_28", "--batch", "2", "--rounds", "3", "--warmup", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("bench --json printed %q (%v)", out, err)
	}
	var names []string
	for _, row := range r.Results {
		names = append(names, row.Model)
		if row.MedianMS <= 0 || row.P90MS < row.MedianMS || row.Batch != 2 {
			t.Errorf("row %+v", row)
		}
	}
	if got := strings.Join(names, ","); got != "deit_mini_28,slab_deit_mini_28,slab_deit_mini_28/unfused" {
		t.Errorf("variants %s", got)
	}
	if r.Results[0].TimeRatio != 1 || !r.Results[1].Fused || r.Results[2].Fused {
		t.Errorf("ratios/fused flags: %+v", r.Results)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {0.9, 4.6}, {1, 5}} {
		if got := bench.Quantile(xs, c.q); got < c.want-1e-12 || got > c.want+1e-12 {
			t.Errorf("quantile(%g) = %g, want %g", c.q, got, c.want)
		}
	}
}
