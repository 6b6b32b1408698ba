package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDtypeFlag: eval-lm and generate run with bf16 and int8 weights,
// the loss within a few percent of float32's (an untrained model's); an
// unknown dtype is an error naming the flag.
func TestDtypeFlag(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("We the People of the United States, in Order to form a more perfect Union. ", 40)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "lm")
	ckpt := filepath.Join(run, "ckpt.safetensors")
	var tr lmTrainResult
	oneJSON(t, runLM(t, "train-lm", "--model", "lm_test_prepbn", "--data", text, "--steps", "4", "--batch", "2",
		"--eval-batches", "1", "--out", run, "--json"), &tr)
	var f32 lmEvalResult
	oneJSON(t, runLM(t, "eval-lm", "--ckpt", ckpt, "--data", text, "--batch", "2", "--fold", "--json"), &f32)
	for _, dt := range []string{"bf16", "int8"} {
		var ev lmEvalResult
		oneJSON(t, runLM(t, "eval-lm", "--ckpt", ckpt, "--data", text, "--batch", "2", "--fold", "--dtype", dt, "--json"), &ev)
		if ev.Dtype != dt || abs(ev.Loss-f32.Loss) > 0.02*f32.Loss {
			t.Fatalf("eval-lm --dtype %s: %+v, float32 loss %v", dt, ev, f32.Loss)
		}
		t.Logf("%s: loss %.6f (float32 %.6f)", dt, ev.Loss, f32.Loss)
		var g genResult
		oneJSON(t, runLM(t, "generate", "--ckpt", ckpt, "--prompt", "We the", "--n", "5", "--temperature", "0", "--dtype", dt, "--json"), &g)
		if g.Tokens != 5 {
			t.Fatalf("generate --dtype %s: %+v", dt, g)
		}
	}
	stdout, stderr = os.Stdout, os.Stderr
	if err := commands["eval-lm"].Run([]string{"--ckpt", ckpt, "--data", text, "--dtype", "fp8"}); err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Fatalf("--dtype fp8: %v", err)
	}
}
