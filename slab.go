// Package slab is the Go API of slab for programs and services: load a
// checkpoint by path, run batches, classify images, generate text, export
// to the official PyTorch layout. It works for every registered model
// family (it links models/all) and never names one.
//
//	m, err := slab.Load("deit.safetensors", slab.Fold())
//	preds, err := m.ClassifyFiles([]string{"cat.jpg"}, 5)
//
// # Concurrency
//
// A Model owns the activation buffers its forward passes reuse (a
// steady-state forward allocates nothing), so two forwards of one model
// cannot run at the same time. Every method of Model takes the model's
// mutex: a Model may be shared by any number of goroutines, and their
// calls run one after another. Results are always copies, valid after the
// call returns. To serve requests in parallel, use a Pool: n independent
// copies of the model (models.Clone: the weights are held n times), each
// call borrowing one.
//
// Threads are process-wide. The kernels run each forward on up to
// Threads() threads of one shared worker pool; SetThreads changes that
// for every model of the process and must not be called while a forward
// runs. While one forward has the worker pool, a kernel called by another
// goroutine does not wait for it: it runs on its own goroutine, single
// threaded. So a Pool of n copies runs up to n forwards at once, one of
// them on the worker pool, and GOMAXPROCS bounds the cores they share.
// Whether one model with all threads or n copies serves a load faster
// depends on the model and the load: measure.
//
// Model.Underlying returns the models.Model behind a Model for what this
// API does not cover; using it bypasses the mutex.
package slab

import (
	"fmt"
	"sync"

	"github.com/slabml/slab/data"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all" // every family
	"github.com/slabml/slab/nn"
)

// Model is a checkpoint loaded for inference. Its methods are safe for
// concurrent use and serialize on the model (see the package doc).
type Model struct {
	mu     sync.Mutex
	m      models.Model
	path   string
	meta   map[string]string
	warns  []string
	folded bool
	opts   options
	// lenient: a language model without tokenizer metadata loads (Import)
	lenient bool

	// classifiers
	pre   data.Preprocess
	names []string
	// language models
	tok data.Tokenizer
}

// Option changes how Load prepares a model.
type Option func(*options)

type options struct {
	fold    bool
	dataset string
	dtype   kernels.Dtype
	dtypeOn bool  // Dtype was given (f32 included)
	err     error // an option's bad argument
}

// Fold folds every BatchNorm-based norm (RepBN, PRepBN, BatchNorm) into the
// neighbouring Linear layers at load: the deploy model, same outputs to
// float32 rounding, faster. Models whose norms do not fold (LayerNorm,
// RMSNorm) load unchanged. A folded model cannot be exported.
func Fold() Option { return func(o *options) { o.fold = true } }

// Dtype stores the weight of every Linear layer as "bf16" or "int8" (or
// keeps "f32") for inference, after folding (nn.Quantize): a decode step
// reads half or about a quarter of the bytes; docs/bench-lowprec.md has
// the kernels and their accuracy. Without it the weights run as the file
// stores them; with it a quantized file must already hold that dtype
// (Dtype("f32") on a bf16 file is an error: its float32 weights are
// gone). Load reports an unknown name.
func Dtype(name string) Option {
	return func(o *options) {
		d, err := kernels.ParseDtype(name)
		if err != nil {
			o.err = fmt.Errorf("slab: Dtype: %w", err)
		}
		o.dtype, o.dtypeOn = d, true
	}
}

// Dataset names the data set whose normalisation and class names a
// 1-channel classifier uses: "fashion-mnist" (the default) or "mnist".
// 3-channel classifiers use ImageNet's.
func Dataset(name string) Option { return func(o *options) { o.dataset = name } }

// Load reads a slab checkpoint (a weights file or a training checkpoint of
// any registered family; optimizer state is skipped) and prepares it for
// inference. Official PyTorch checkpoints are converted first with
// `slab import`.
func Load(path string, opts ...Option) (*Model, error) {
	o, err := loadOptions(opts)
	if err != nil {
		return nil, err
	}
	m, f, warns, err := models.Load(path)
	if err != nil {
		return nil, err
	}
	r := &Model{m: m, path: path, meta: f.Metadata, warns: warns, opts: o}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	return r, nil
}

func loadOptions(opts []Option) (options, error) {
	o := options{dataset: "fashion-mnist"}
	for _, f := range opts {
		f(&o)
	}
	if o.err != nil {
		return o, o.err
	}
	if o.dataset != "fashion-mnist" && o.dataset != "mnist" {
		return o, fmt.Errorf("slab: Dataset(%q): want fashion-mnist or mnist", o.dataset)
	}
	return o, nil
}

// prepare folds when asked and sets up preprocessing or the tokenizer.
func (r *Model) prepare() error {
	m := r.m
	if _, ok := m.(models.Classifier); ok { // forwards run in chunks of maxBatch images
		if err := models.CheckMemory(fmt.Sprintf("batch %d", maxBatch), m.Config(), maxBatch, false); err != nil {
			return fmt.Errorf("slab: %s: %w", r.path, err)
		}
	}
	m.DropGrads()
	if r.opts.fold && m.Config().NormSpec().Foldable() {
		if err := fuse.Fold(m); err != nil {
			return fmt.Errorf("slab: %s: folding: %w", r.path, err)
		}
		r.folded = true
	}
	r.folded = r.folded || m.Config().NormSpec().Kind == nn.NormNone
	if r.opts.dtypeOn {
		if _, err := nn.Quantize(m, r.opts.dtype); err != nil {
			return fmt.Errorf("slab: %s: %w", r.path, err)
		}
	}
	switch mm := m.(type) {
	case models.Classifier:
		nn.Prepack(mm) // inference only: the weights are final
		p, names, err := preprocessFor(mm, r.opts.dataset)
		if err != nil {
			return fmt.Errorf("slab: %s: %w", r.path, err)
		}
		r.pre, r.names = p, names
	case models.LM:
		tok, err := tokenizerOf(r.meta)
		if err != nil {
			if r.lenient {
				return nil // an imported state dict: TokenLogits only
			}
			return fmt.Errorf("slab: %s: %w", r.path, err)
		}
		if tok.VocabSize() > mm.Vocab() {
			return fmt.Errorf("slab: %s: tokenizer %s has %d tokens, the model %d logits", r.path, tok.Name(), tok.VocabSize(), mm.Vocab())
		}
		r.tok = tok
	}
	return nil
}

// tokenizerOf rebuilds a checkpoint's tokenizer from its metadata (as the
// language-model commands record it).
func tokenizerOf(meta map[string]string) (data.Tokenizer, error) {
	if meta["tokenizer"] == "" {
		return nil, fmt.Errorf("no tokenizer metadata: cannot encode text for this language model")
	}
	return data.TokenizerFromMeta(meta)
}

// Name is the registry name the model's config records ("model" if none).
func (r *Model) Name() string {
	if n, ok := r.m.Config().(interface{ ModelName() string }); ok && n.ModelName() != "" {
		return n.ModelName()
	}
	return "model"
}

// Family is the model family ("vit", "llama", ...).
func (r *Model) Family() string { return r.m.Family() }

// Task says whether the model classifies images or models language.
func (r *Model) Task() models.Task {
	if _, ok := r.m.(models.Classifier); ok {
		return models.TaskClassify
	}
	return models.TaskLM
}

// Norm is the kind of the model's norms ("none" once folded).
func (r *Model) Norm() string { return r.m.Config().NormSpec().Kind }

// Folded reports whether the model's norms are folded into its Linears.
func (r *Model) Folded() bool { return r.folded }

// Params is the number of learnable values.
func (r *Model) Params() int64 { return models.NumParams(r.m) }

// Warnings are what loading the state dict reported (an unfinished PRepBN
// schedule, counters set to 0, ...).
func (r *Model) Warnings() []string { return append([]string(nil), r.warns...) }

// Metadata returns a copy of the checkpoint's metadata.
func (r *Model) Metadata() map[string]string {
	out := make(map[string]string, len(r.meta))
	for k, v := range r.meta {
		out[k] = v
	}
	return out
}

// Underlying is the model itself, for what this API does not cover. Calls
// on it bypass the Model's mutex: do not use it while other goroutines
// call the Model's methods.
func (r *Model) Underlying() models.Model { return r.m }

// clone is an independent copy for a Pool: same weights, its own buffers.
func (r *Model) clone() (*Model, error) {
	r.mu.Lock()
	d, err := models.Clone(r.m)
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("slab: cloning %s: %w", r.Name(), err)
	}
	c := &Model{m: d, path: r.path, meta: r.meta, warns: r.warns, opts: r.opts, folded: r.folded, lenient: r.lenient}
	c.opts.fold = false // the clone copies the folded layout already
	if err := c.prepare(); err != nil {
		return nil, err
	}
	c.folded = r.folded
	return c, nil
}

// SetThreads sets how many threads the kernels use, for the whole process
// (n < 1: all cores, GOMAXPROCS). Call it before serving, never while a
// forward runs.
func SetThreads(n int) { kernels.SetThreads(n) }

// Threads reports how many threads the kernels use.
func Threads() int { return kernels.Threads() }
