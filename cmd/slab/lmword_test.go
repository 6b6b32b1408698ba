package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/data"
)

// TestLMWordBaselines: a word-level adaptive LM trained from a text file
// reports, through eval-lm, its vocabulary, the split's out-of-vocabulary
// rate and (with --bigram) the add-one bigram baseline, each equal to what
// package data computes on the same split; the fold check still holds.
func TestLMWordBaselines(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "corpus.txt")
	var b strings.Builder
	for i := 0; i < 400; i++ {
		// Every line has one word seen once (an <unk> under min count 3).
		fmt.Fprintf(&b, "We the people of the %s union form a more perfect nation , and w%d .\n",
			[]string{"united", "free", "whole"}[i%3], i)
	}
	if err := os.WriteFile(text, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "lm")
	ckpt := filepath.Join(run, "ckpt.safetensors")
	var tr lmTrainResult
	oneJSON(t, runLM(t, "train-lm", "--model", "adaptive_lm_tiny", "--norm", "prepbn", "--tokenizer", "word", "--data", text,
		"--steps", "8", "--batch", "2", "--eval-batches", "1", "--out", run, "--json"), &tr)
	var ev lmEvalResult
	oneJSON(t, runLM(t, "eval-lm", "--ckpt", ckpt, "--data", text, "--batch", "2", "--bigram", "--fold-check", "--n", "8", "--json"), &ev)

	texts, err := data.ReadTextSplits(text)
	if err != nil {
		t.Fatal(err)
	}
	sp, tok, err := data.LoadWordSplits(text, data.DefaultWordMinCount)
	if err != nil {
		t.Fatal(err)
	}
	oov, total := tok.OOV(texts[1])
	bg, err := data.NewBigram(sp.Train, tok.VocabSize())
	if err != nil {
		t.Fatal(err)
	}
	want, n, err := bg.Perplexity(sp.Validation)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Vocab != tok.VocabSize() || ev.Vocab != tr.Vocab || ev.OOVRate == nil || oov == 0 ||
		*ev.OOVRate != float64(oov)/float64(total) || ev.BigramPPL == nil || *ev.BigramPPL != want || ev.BigramTokens != n {
		t.Fatalf("eval-lm vocab %d oov %v bigram %v (%d tokens); want vocab %d (train-lm %d), oov %d/%d, bigram %g (%d)",
			ev.Vocab, ev.OOVRate, ev.BigramPPL, ev.BigramTokens, tok.VocabSize(), tr.Vocab, oov, total, want, n)
	}
	if math.IsInf(want, 0) || want <= 1 || ev.FoldCheck == nil || ev.FoldCheck.RelErr > 1e-5 || ev.FoldCheck.GreedySame != 8 {
		t.Fatalf("bigram %g, fold check %+v", want, ev.FoldCheck)
	}
	t.Logf("vocab %d, OOV %.2f %%, bigram %.1f, model %.1f; fold rel err %.2g", ev.Vocab, 100**ev.OOVRate, want, ev.PPL, ev.FoldCheck.RelErr)
	// The text report carries the same lines.
	out := string(runLM(t, "eval-lm", "--ckpt", ckpt, "--data", text, "--batch", "2", "--bigram"))
	if !strings.Contains(out, fmt.Sprintf("vocabulary %d, out-of-vocabulary", ev.Vocab)) || !strings.Contains(out, "bigram (add-one") {
		t.Fatalf("eval-lm text report:\n%s", out)
	}
}
