package adaptive_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/train"
)

// TestSOTU is the word-level SOTU experiment of docs/adaptive-lm.md, run
// only when asked (it trains for minutes):
//
//	SLAB_ADAPTIVE_SOTU=adaptive_lm_small_prepbn SLAB_ADAPTIVE_STEPS=600 \
//	SLAB_ADAPTIVE_OUT=/tmp/run go test ./models/adaptive/ -run TestSOTU -v -timeout 0
//
// It trains the named model on the training split (batch 16 x 128 words,
// the LMTrainer's recipe), resuming from SLAB_ADAPTIVE_OUT/ckpt.safetensors
// when it exists, and reports the vocabulary, the OOV rates, the bigram
// baseline, validation perplexity (folded too, for PRepBN) and evaluation
// and generation speed, as one JSON line.
func TestSOTU(t *testing.T) {
	name := os.Getenv("SLAB_ADAPTIVE_SOTU")
	if name == "" {
		t.Skip("set SLAB_ADAPTIVE_SOTU to a model name to run the SOTU experiment")
	}
	steps, _ := strconv.Atoi(os.Getenv("SLAB_ADAPTIVE_STEPS"))
	if steps <= 0 {
		steps = 600
	}
	texts, err := data.ReadTextSplits("sotu")
	if err != nil {
		t.Fatal(err)
	}
	sp, tok, err := data.LoadWordSplits("sotu", data.DefaultWordMinCount)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]any{"model": name, "vocab": tok.VocabSize(), "train_tokens": len(sp.Train),
		"validation_tokens": len(sp.Validation), "steps": steps}
	for i, split := range []string{"train", "validation", "test"} {
		oov, total := tok.OOV(texts[i])
		res["oov_"+split] = float64(oov) / float64(total)
	}
	bg, err := data.NewBigram(sp.Train, tok.VocabSize())
	if err != nil {
		t.Fatal(err)
	}
	res["bigram_ppl"], _, _ = bg.Perplexity(sp.Validation)

	e, c, err := models.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("vocab", strconv.Itoa(tok.VocabSize())); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := models.Build(e.Family, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	res["params"] = models.NumParams(m)
	cfg := train.DefaultLMConfig()
	cfg.Steps, cfg.Batch, cfg.Seq = steps, 16, 128
	tr, err := train.NewLMTrainer(cfg, m.(models.LM), sp.Train)
	if err != nil {
		t.Fatal(err)
	}
	tr.Meta = data.TokenizerMeta(tok)
	out := os.Getenv("SLAB_ADAPTIVE_OUT")
	ckpt := ""
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		ckpt = filepath.Join(out, "ckpt.safetensors")
		if f, err := checkpoint.Read(ckpt); err == nil {
			if err := tr.Restore(f, ckpt); err != nil {
				t.Fatal(err)
			}
			t.Logf("resumed at step %d", tr.Step)
		}
	}
	start := time.Now()
	var last float64
	for tr.Step < int64(steps) {
		l, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		last = l
		if tr.Step%50 == 0 || tr.Step == int64(steps) {
			t.Logf("step %d loss %.4f (%.0f s)", tr.Step, l, time.Since(start).Seconds())
			if ckpt != "" {
				if err := tr.Save(ckpt); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	res["train_seconds_this_sitting"] = time.Since(start).Seconds()
	res["last_train_loss"] = last
	lm := m.(models.LM)
	const eb, et = 16, 128
	t0 := time.Now()
	vl, n, err := train.EvaluateLM(lm, sp.Validation, eb, et, 0)
	if err != nil {
		t.Fatal(err)
	}
	res["eval_tok_per_s"] = float64(n) / time.Since(t0).Seconds()
	res["val_ppl"], res["val_tokens_scored"] = math.Exp(vl), n
	dec := m.(models.Decoder)
	if c.NormSpec().Foldable() {
		fm, err := fuse.Copy(m)
		if err != nil {
			t.Fatal(err)
		}
		fl, _, err := train.EvaluateLM(fm.(models.LM), sp.Validation, eb, et, 0)
		if err != nil {
			t.Fatal(err)
		}
		res["val_ppl_folded"] = math.Exp(fl)
		dec = fm.(models.Decoder)
		t0 = time.Now()
		if _, _, err := train.EvaluateLM(fm.(models.LM), sp.Validation, eb, et, 0); err != nil {
			t.Fatal(err)
		}
		res["eval_tok_per_s_folded"] = float64(n) / time.Since(t0).Seconds()
	}
	s, err := dec.NewSession(1, 128)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := tok.Encode("The state of the Union is")
	smp := nn.NewSampler(0.8, 0, 1, 7)
	t0 = time.Now()
	gen, err := s.Generate(prompt, 200, smp, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res["generate_tok_per_s"] = float64(len(gen)) / time.Since(t0).Seconds()
	txt, _ := tok.Detokenize(gen[:min(60, len(gen))])
	res["sample"] = txt
	b, _ := json.Marshal(res)
	t.Logf("RESULT %s", b)
	if out != "" {
		os.WriteFile(filepath.Join(out, "result.json"), append(b, '\n'), 0o644)
	}
}
