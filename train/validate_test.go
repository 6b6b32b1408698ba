package train

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/llama"
)

// TestRecipeValidate: every field of a recipe out of its range, NaN or
// infinite is refused naming the flag it comes from (issue 14: NaN
// --warmup-epochs, --clip-grad, --schedule-frac or --min-lr used to fail
// after a whole epoch, --schedule-frac 5 and --min-lr above --lr passed).
func TestRecipeValidate(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		want string
		mod  func(*Config)
	}{
		{"warmup-epochs", func(c *Config) { c.WarmupEpoch = nan }},
		{"clip-grad", func(c *Config) { c.ClipGrad = nan }},
		{"clip-grad", func(c *Config) { c.ClipGrad = inf }},
		{"schedule-frac", func(c *Config) { c.ScheduleFrac = nan }},
		{"schedule-frac", func(c *Config) { c.ScheduleFrac = 5 }},
		{"min-lr", func(c *Config) { c.MinLR = nan }},
		{"min-lr", func(c *Config) { c.MinLR = 2 * c.LR }},
		{"warmup-lr", func(c *Config) { c.WarmupLR = inf }},
		{"weight-decay", func(c *Config) { c.WeightDecay = nan }},
		{"smoothing", func(c *Config) { c.Smoothing = nan }},
		{"lr", func(c *Config) { c.LR = inf }},
		{"batch", func(c *Config) { c.Batch = MaxBatch + 1 }},
		{"eval-batch", func(c *Config) { c.EvalBatch = 0 }},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.want+" ") {
			t.Errorf("%s: %v", c.want, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default recipe: %v", err)
	}
	for _, c := range []struct {
		want string
		mod  func(*LMConfig)
	}{
		{"batch", func(c *LMConfig) { c.Batch = MaxBatch + 1 }},
		{"seq", func(c *LMConfig) { c.Seq = MaxSeq + 1 }},
		{"lr", func(c *LMConfig) { c.LR = -1 }},
		{"min-lr", func(c *LMConfig) { c.MinLR = 1 }},
		{"clip", func(c *LMConfig) { c.Clip = nan }},
		{"warmup", func(c *LMConfig) { c.Warmup = nan }},
		{"prepbn-warm", func(c *LMConfig) { c.PRepBNWarm = -0.5 }},
	} {
		cfg := DefaultLMConfig()
		cfg.Seq = 32
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.want+" ") {
			t.Errorf("LM %s: %v", c.want, err)
		}
	}
}

// TestEvalLMOptions: EvalLM refuses a batch of 0 (it looped forever), a
// negative seq or greedy count and an unknown split before it opens the
// checkpoint, naming the option.
func TestEvalLMOptions(t *testing.T) {
	ok := LMEvalOptions{Checkpoint: "/no/such/ckpt", Split: "validation", Batch: 2}
	for _, c := range []struct {
		want string
		mod  func(*LMEvalOptions)
	}{
		{"batch", func(o *LMEvalOptions) { o.Batch = 0 }},
		{"batch", func(o *LMEvalOptions) { o.Batch = MaxBatch + 1 }},
		{"seq", func(o *LMEvalOptions) { o.Seq = -1 }},
		{"n", func(o *LMEvalOptions) { o.Greedy = -1 }},
		{"split", func(o *LMEvalOptions) { o.Split = "train" }},
		{"ckpt", func(o *LMEvalOptions) {}},
	} {
		o := ok
		c.mod(&o)
		_, err := EvalLM(o)
		var ie *models.InputError
		if !errors.As(err, &ie) || ie.Input != c.want {
			t.Errorf("%s: %v", c.want, err)
		}
	}
}

// TestCheckConfig: an option given with a checkpoint must be the
// checkpoint's own (issue 14: --norm, --attn, --tokenizer were dropped).
func TestCheckConfig(t *testing.T) {
	_, c, err := models.Resolve("lm_test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckConfig(c, map[string]string{"model": "lm_test", "norm": c.Get("norm"), "attn": c.Get("attn")}); err != nil {
		t.Errorf("matching options: %v", err)
	}
	for k, v := range map[string]string{"model": "lm_tiny", "norm": "prepbn", "attn": "sla", "tokenizer": "gpt2"} {
		var ie *models.InputError
		if err := CheckConfig(c, map[string]string{k: v}); !errors.As(err, &ie) || ie.Input != k {
			t.Errorf("%s %s: %v", k, v, err)
		}
	}
}
