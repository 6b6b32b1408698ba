package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

// runLM runs an LM command in-process and returns stdout, failing on error.
func runLM(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	stdout, stderr = &out, &errb
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	if err := commands[name].Run(args); err != nil {
		t.Fatalf("slab %s %s: %v\nstderr: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// oneJSON decodes stdout that must be exactly one JSON object.
func oneJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if n := bytes.Count(bytes.TrimSpace(b), []byte("\n")); n != 0 {
		t.Fatalf("stdout has %d lines, want one JSON object: %s", n+1, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("stdout is not JSON: %v: %s", err, b)
	}
}

func TestLMCommands(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("We the People of the United States, in Order to form a more perfect Union. ", 60)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "lm")
	ckpt := filepath.Join(run, "ckpt.safetensors")
	var tr lmTrainResult
	oneJSON(t, runLM(t, "train-lm", "--model", "lm_test_prepbn", "--data", text, "--steps", "6", "--batch", "2",
		"--eval-every", "3", "--eval-batches", "2", "--out", run, "--json"), &tr)
	if tr.Steps != 6 || len(tr.Curve) != 6 || tr.ValPPL <= 1 || tr.ValPPL > 300 || tr.Norm != "prepbn" {
		t.Fatalf("train-lm result %+v", tr)
	}
	// Resume to 8 steps from the 6-step checkpoint.
	oneJSON(t, runLM(t, "train-lm", "--model", "lm_test_prepbn", "--data", text, "--steps", "8", "--batch", "2",
		"--eval-batches", "2", "--resume", ckpt, "--json"), &tr)
	if len(tr.Curve) != 2 {
		t.Fatalf("resumed run did %d steps, want 2", len(tr.Curve))
	}
	var ev, evf lmEvalResult
	oneJSON(t, runLM(t, "eval-lm", "--ckpt", ckpt, "--data", text, "--batch", "2", "--json"), &ev)
	oneJSON(t, runLM(t, "eval-lm", "--ckpt", ckpt, "--data", text, "--batch", "2", "--fold", "--json"), &evf)
	if ev.Tokens == 0 || !evf.Folded || abs(ev.Loss-evf.Loss) > 1e-4*ev.Loss {
		t.Fatalf("eval %+v, folded %+v: losses differ", ev, evf)
	}
	var fc lmEvalResult
	oneJSON(t, runLM(t, "eval-lm", "--ckpt", ckpt, "--data", text, "--batch", "2", "--fold-check", "--prompt", "We the", "--n", "12", "--json"), &fc)
	if c := fc.FoldCheck; c == nil || c.RelErr > 1e-4 || c.RelErr == 0 || c.GreedySame != 12 || c.GreedyTokens != 12 ||
		fc.Loss != ev.Loss || abs(c.FoldedLoss-evf.Loss) > 1e-6*evf.Loss {
		t.Fatalf("fold check %+v %+v (eval %+v, folded %+v)", fc, fc.FoldCheck, ev, evf)
	}
	t.Logf("fold check: logits rel err %.3g, max abs %.3g, greedy %d/%d", fc.FoldCheck.RelErr, fc.FoldCheck.MaxAbs, fc.FoldCheck.GreedySame, fc.FoldCheck.GreedyTokens)
	var g genResult
	oneJSON(t, runLM(t, "generate", "--ckpt", ckpt, "--prompt", "We the", "--n", "10", "--temperature", "0", "--json"), &g)
	if g.Tokens != 10 || !g.Folded || len(g.Text) == 0 {
		t.Fatalf("generate %+v", g)
	}
	// Streaming mode prints prompt + text on stdout (JSON turned each
	// invalid byte of the untrained model's output into U+FFFD, as the
	// rune conversion does).
	if out := runLM(t, "generate", "--ckpt", ckpt, "--prompt", "We the", "--n", "10", "--temperature", "0"); !strings.HasPrefix(string([]rune(string(out))), "We the"+g.Text) {
		t.Fatalf("streamed %q, want prefix %q", out, "We the"+g.Text)
	}
	// An official-layout state dict (here written from the checkpoint's
	// model) loads with --state into a freshly built model.
	m, _, _, err := loadLM(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	sd := checkpoint.NewFile()
	sd.Tensors = models.StateDict(m)
	stPath := filepath.Join(dir, "official.safetensors")
	if err := checkpoint.Write(stPath, sd); err != nil {
		t.Fatal(err)
	}
	var g2 genResult
	oneJSON(t, runLM(t, "generate", "--model", "lm_test_prepbn", "--state", stPath, "--prompt", "We the", "--n", "10", "--temperature", "0", "--json"), &g2)
	if g2.Text != g.Text {
		t.Fatalf("--state model generated %q, checkpoint model %q", g2.Text, g.Text)
	}
	var b lmBenchResult
	oneJSON(t, runLM(t, "bench-lm", "--models", "lm_test_rmsnorm,lm_test_prepbn,lm_test_prepbn_sla", "--prompt", "4", "--generate", "8", "--rounds", "1", "--json"), &b)
	if len(b.Models) != 3 || b.Ratios["lm_test_rmsnorm"] != 1 || !b.Models[1].Folded || b.Models[1].TokensPerSec <= 0 || b.BandwidthGB <= 0 ||
		len(b.NormRatios) != 1 || b.NormRatios["lm_test_prepbn"] <= 0 {
		t.Fatalf("bench-lm %+v", b)
	}
}

// TestLMGPT2Trim: train-lm builds the trimmed GPT-2 vocabulary from the
// training text, the checkpoint carries it, and eval-lm and generate
// rebuild the same tokenizer from the checkpoint alone.
func TestLMGPT2Trim(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("We the People of the United States, in Order to form a more perfect Union. ", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "lm")
	ckpt := filepath.Join(run, "ckpt.safetensors")
	var tr lmTrainResult
	oneJSON(t, runLM(t, "train-lm", "--model", "lm_test", "--tokenizer", "gpt2-trim", "--data", text, "--steps", "3", "--batch", "2",
		"--eval-batches", "1", "--out", run, "--json"), &tr)
	// 256 single bytes + the sentence's multi-byte GPT-2 tokens.
	if tr.Tokenizer != "gpt2-trim" || tr.Vocab <= 256 || tr.Vocab > 300 || tr.Tokens != 3*2*32 {
		t.Fatalf("train-lm result %+v", tr)
	}
	var ev lmEvalResult
	oneJSON(t, runLM(t, "eval-lm", "--ckpt", ckpt, "--data", text, "--batch", "2", "--json"), &ev)
	if ev.Tokens != tr.ValTokens || abs(ev.Loss-tr.ValLoss) > 1e-6*ev.Loss {
		t.Fatalf("eval-lm %+v differs from train-lm's final validation (%d tokens, loss %g)", ev, tr.ValTokens, tr.ValLoss)
	}
	var g genResult
	oneJSON(t, runLM(t, "generate", "--ckpt", ckpt, "--prompt", "We the People", "--n", "5", "--temperature", "0", "--json"), &g)
	if g.Tokens != 5 {
		t.Fatalf("generate %+v", g)
	}
	if err := commands["generate"].Run([]string{"--model", "lm_small_bpe", "--n", "2"}); err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Errorf("generate with gpt2-trim and no checkpoint: %v", err)
	}
}

func TestLMErrors(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"train-lm", []string{"--model", "lm_nope"}, "--model"},
		{"train-lm", []string{"--model", "lm_test", "--data", "/no/such/file.txt"}, "/no/such/file.txt"},
		{"train-lm", []string{"--model", "lm_test", "--norm", "groupnorm"}, "groupnorm"},
		{"train-lm", []string{"--model", "lm_test", "--attn", "flash"}, "flash"},
		{"train-lm", []string{"--model", "lm_test", "--ckpt", "/no/such/ckpt.safetensors"}, "--ckpt"},
		{"train-lm", []string{"--model", "lm_test", "--state", "/no/such/state.pth"}, "--state"},
		{"eval-lm", []string{}, "--ckpt"},
		{"generate", []string{"--model", "lm_test", "--tokenizer", "sentencepiece", "--state", "/no/such/state.pth"}, "sentencepiece"},
		{"generate", []string{"--model", "lm_test"}, "--ckpt"}, // random weights
		{"bench-lm", []string{"--models", "lm_test", "--generate", "100"}, "positions"},
	} {
		stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
		err := commands[tc.cmd].Run(tc.args)
		stdout, stderr = os.Stdout, os.Stderr
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("slab %s %v: error %v, want one naming %q", tc.cmd, tc.args, err, tc.want)
		}
	}
}

// abs takes metrics and plain floats alike.
func abs[T ~float64](x T) T {
	if x < 0 {
		return -x
	}
	return x
}
