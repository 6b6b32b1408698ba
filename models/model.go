// Package models is the contract every model family of slab fulfils and
// the registry that names them: a family is one package under models/
// that registers its named configurations (Register) and builds models
// that satisfy Model and either Classifier or LM. Commands, the trainer
// and the folder (package fuse) work through this package only and never
// name a family; models/all links every family into a program.
//
// The contract, and why:
//
//   - Config is the family's plain struct (nanoGPT's habit), stored as
//     JSON in every checkpoint beside the family name, so a checkpoint
//     alone rebuilds its model. Options the CLI may override (norm,
//     attention, ...) go through Config.Set, which names the option in
//     its errors, so flags never need to know a family's fields.
//   - Every parameter and buffer carries its official state-dict name, so
//     state dicts are name lookups (StateDict, LoadState) with per-family
//     Aliases only where the official layouts differ.
//   - Norms are built by one factory (nn.NormSpec) and listed as slots
//     (Norms), so the PRepBN schedule, the BN re-calibration mode and the
//     state-dict rules of LinearNorm/RepBN layouts are written once.
//   - Folding is declared, not coded, by a family: FoldSites says which
//     Linear layers read each norm (or which convolution produces its
//     input) and package fuse applies the algebra in place.
package models

import (
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Task says what a model maps inputs to.
type Task string

// Tasks.
const (
	// TaskClassify maps images [B,C,H,W] to logits [B,classes].
	TaskClassify Task = "classify"
	// TaskLM maps token ids [B,T] to next-token logits [B,T,vocab].
	TaskLM Task = "lm"
)

// Config is a family's configuration: a JSON-serialisable struct behind a
// pointer.
type Config interface {
	// Validate reports the first inconsistency, naming the field at fault.
	Validate() error
	// Set changes one named option (for example "norm" or "attn") to value,
	// with an error naming the option when the family has no such option or
	// the value is not one of its choices. Set does not validate the whole
	// config; call Validate after the last Set.
	Set(option, value string) error
	// Get returns an option's current value ("" when the family has no
	// such option), for display.
	Get(option string) string
	// Summary describes the model's shape in one line for listings.
	Summary() string
	// NormSpec is the spec every norm of the model is built from.
	NormSpec() nn.NormSpec
	// ParamCount is the number of learnable values a model built from this
	// config holds (as PyTorch counts them: unused parameters included).
	ParamCount() int64
	// FLOPs is the forward cost of one image (classifiers) or one token at
	// the configured context (language models), a multiply-add counted as 2.
	FLOPs() int64
	// FLOPsByLayer splits FLOPs by layer type ("linear", "attention", ...).
	FLOPsByLayer() map[string]int64
}

// Model is what every family's model provides.
type Model interface {
	nn.Module
	// Family is the registered family name ("vit", "llama", ...).
	Family() string
	// Config is the model's configuration (a pointer the model owns: change
	// it only through the model).
	Config() Config
	// Norms lists every norm of the model with its state-dict prefix.
	Norms() []nn.NormSlot
	// FoldSites lists where each norm folds (docs/method.md 2.1). A family
	// may restructure itself here to receive the folds (LLaMA unties its
	// output layer); it is called only by the folder.
	FoldSites() ([]nn.FoldSite, error)
	// Folded is called once every site is folded: the model records that
	// its norms are gone (its config then builds the folded layout) and
	// re-lists its parameters, which may have gained biases.
	Folded()
	// DropGrads releases gradient buffers of an inference-only model.
	DropGrads()
}

// Classifier is an image classifier.
type Classifier interface {
	Model
	// InputShape is the (channels, height, width) of one input image.
	InputShape() (c, h, w int)
	// Classes is the number of logits per image.
	Classes() int
	// Forward maps images [B,C,H,W] to logits [B,Classes]. In Train mode it
	// uses batch statistics and drop path and advances the PRepBN schedule;
	// in Recalibrate mode it only updates BN running statistics. The
	// result is owned by the model and valid until the next Forward.
	Forward(x *tensor.Tensor, mode nn.Mode) (*tensor.Tensor, error)
	// Backward accumulates parameter gradients for the last Train Forward
	// given d(loss)/d(logits).
	Backward(dlogits *tensor.Tensor)
	// SetDropPathSeed reseeds the random stream drop path draws from.
	SetDropPathSeed(seed uint64)
}

// LM is a causal language model.
type LM interface {
	Model
	// Vocab is the number of logits per position.
	Vocab() int
	// Context is the longest sequence Forward accepts.
	Context() int
	// Forward maps ids [B*T] (row-major [B,T]) to logits [B,T,Vocab]; modes
	// as Classifier.Forward.
	Forward(ids []int, B, T int, mode nn.Mode) (*tensor.Tensor, error)
	// Backward accumulates parameter gradients for the last Train Forward.
	Backward(dlogits *tensor.Tensor)
}

// NumParams counts the elements of m's parameters.
func NumParams(m nn.Module) int64 {
	var n int64
	for _, p := range m.Params() {
		n += int64(tensor.Numel(p.W.Shape)) // not Size: a weight held in bf16/int8 only has no float32 data
	}
	return n
}

// Lambda is the weight of the LayerNorm/RMSNorm branch m's next training
// forward uses (1 for LayerNorm models, 0 for BatchNorm-based ones).
func Lambda(m Model) float64 { return nn.Lambda(m.Norms()) }

// SetSchedule restarts m's PRepBN schedule: warm warm-up units, then lambda
// decaying to 0 over step units (a unit is one training call for vision
// norms, 16 for the LLaMA schedule).
func SetSchedule(m Model, warm, step int64) { nn.SetSchedule(m.Norms(), warm, step) }

// Decoder is a language model that generates with a cache.
type Decoder interface {
	LM
	// NewSession allocates a generation session for batch sequences of up
	// to maxT positions (all memory it will need, once).
	NewSession(batch, maxT int) (Session, error)
	// DecodeBytes is what one decode step must stream from memory: every
	// weight it reads once per token (the bandwidth floor of decoding).
	DecodeBytes() int64
	// CacheBytes is what a decode step at position pos (pos positions
	// already cached) reads of the key/value cache, over all layers: the
	// other part of the bytes a step streams, growing with the context.
	CacheBytes(pos int) int64
}

// Session is one generation context of a Decoder.
type Session interface {
	// Step feeds ids [B*T] (T new positions per sequence) in evaluation
	// mode and returns the logits of each sequence's last position
	// [B, Vocab].
	Step(ids []int, T int) (*tensor.Tensor, error)
	// Generate feeds prompt (one sequence) and samples n tokens with smp,
	// calling emit after each (emit may stop early by returning false). It
	// returns the generated ids, in out when it is large enough.
	Generate(prompt []int, n int, smp *nn.Sampler, out []int, emit func(id int) bool) ([]int, error)
	// Reset empties the cache for a new prompt.
	Reset()
}
