package models

import "github.com/slabml/slab/nn"

// LossLM is a language model that computes its own next-token loss
// instead of full logits: an adaptive softmax (the adaptive-input LM) scores
// only the target's cluster per position, so a full [B,T,Vocab] logit
// tensor would cost what it saves. The LM trainer and evaluator use these
// methods when a model implements them, and Forward/Backward otherwise;
// Forward of such a model still gives exact log-probabilities in
// evaluation (perplexity tools, sampling).
type LossLM interface {
	LM
	// ForwardLoss returns the mean negative log-likelihood (nats) of
	// targets [B*T] given ids [B*T] (row-major [B,T]); modes as
	// LM.Forward. In Train mode it keeps what BackwardLoss needs.
	ForwardLoss(ids, targets []int, B, T int, mode nn.Mode) (float64, error)
	// BackwardLoss accumulates the parameter gradients of the last Train
	// ForwardLoss's mean loss.
	BackwardLoss()
}
