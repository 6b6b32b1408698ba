package fuse

import (
	"fmt"

	"github.com/slabml/slab/models/llama"
	"github.com/slabml/slab/nn"
)

// FuseLLaMA folds every eval-mode PRepBN of a decoder in place: each
// layer's input_layernorm into q_proj, k_proj and v_proj (all three read
// the same normalised tokens), post_attention_layernorm into gate_proj and
// up_proj, and, unlike the official code (SLAB.md 2.2), the final
// model.norm into lm_head. A tied lm_head cannot absorb the fold without
// changing the embedding, so it is first untied into its own copy. The
// folded norms become nn.Identity and the Linears gain biases named
// <proj>.bias. RMSNorm and LayerNorm models are refused: they divide by a
// per-token statistic and are not affine.
func FuseLLaMA(m *llama.Model) error {
	if m.Cfg.Norm != llama.NormPRep {
		return fmt.Errorf("fuse: model %s uses %s; only prepbn folds", m.Cfg.Name, m.Cfg.Norm)
	}
	for i, b := range m.Blocks {
		if err := foldMany(b.InputNorm, fmt.Sprintf("model.layers.%d.input_layernorm", i), b.Attn.Q, b.Attn.K, b.Attn.V); err != nil {
			return err
		}
		b.InputNorm = nn.Identity{}
		if err := foldMany(b.PostNorm, fmt.Sprintf("model.layers.%d.post_attention_layernorm", i), b.MLP.Gate, b.MLP.Up); err != nil {
			return err
		}
		b.PostNorm = nn.Identity{}
	}
	if m.LMHead == nil {
		m.LMHead = nn.NewLinear("lm_head", m.Cfg.Dim, m.Cfg.Vocab, false)
		copy(m.LMHead.Weight.W.Data, m.Embed.Weight.W.Data)
		m.LMHead.Weight.MarkChanged()
		m.Cfg.Tied = false
	}
	if err := foldMany(m.Norm, "model.norm", m.LMHead); err != nil {
		return err
	}
	m.Norm = nn.Identity{}
	m.Cfg.Norm = "none"
	return nil
}

func foldMany(norm nn.Norm, name string, ls ...*nn.Linear) error {
	a, b, err := Affine(norm)
	if err != nil {
		return fmt.Errorf("fuse: %s: %w", name, err)
	}
	for _, l := range ls {
		if err := FoldInto(l, a, b); err != nil {
			return err
		}
	}
	return nil
}
