package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Model is what the trainer needs of an image classifier: any family's
// (models.Classifier); tests use a tiny stand-in.
type Model = models.Classifier

// Dataset is a labelled image set.
type Dataset interface {
	// Len is the number of images.
	Len() int
	// Shape is the (channels, height, width) of one image as Batch writes it.
	Shape() (c, h, w int)
	// Batch writes images idx into x (len(idx)*c*h*w values, NCHW) and their
	// labels into labels; augment applies the training augmentation, drawing
	// from rng (and only from rng, so runs are reproducible).
	Batch(idx []int, augment bool, rng *rand.Rand, x []float32, labels []int) error
}

// Config is the training recipe. Zero values are replaced by the defaults of
// DefaultConfig in NewTrainer where noted.
type Config struct {
	Epochs int `json:"epochs"`
	Batch  int `json:"batch"`
	// EvalBatch is the batch size of evaluation and re-calibration passes
	// that do not need gradients (default 256).
	EvalBatch   int     `json:"eval_batch"`
	LR          float64 `json:"lr"`
	WarmupLR    float64 `json:"warmup_lr"`
	MinLR       float64 `json:"min_lr"`
	WarmupEpoch float64 `json:"warmup_epochs"`
	WeightDecay float64 `json:"weight_decay"`
	Smoothing   float64 `json:"label_smoothing"`
	// ClipGrad is the max global gradient norm; 0 disables clipping.
	ClipGrad float64 `json:"clip_grad"`
	// ScheduleT is the PRepBN schedule length in training forwards. 0 means
	// ScheduleFrac x all training steps (docs/method.md 1.3, the official repository's issue #6).
	ScheduleT    int64   `json:"schedule_t"`
	ScheduleFrac float64 `json:"schedule_frac"`
	// Recalibrate is the number of BN-statistics passes over the training
	// set after the last epoch (docs/method.md 1.4); 0 skips it.
	Recalibrate int    `json:"recalibrate"`
	Seed        uint64 `json:"seed"`
}

// DefaultConfig is the small-image recipe of the main job: AdamW 1e-3 with
// one warm-up epoch and cosine decay, label smoothing 0.1, clipping at 5
// (as the official DeiT configs), one re-calibration pass.
func DefaultConfig() Config {
	return Config{
		Epochs: 10, Batch: 128, EvalBatch: 256,
		LR: 1e-3, WarmupLR: 1e-6, MinLR: 1e-5, WarmupEpoch: 1,
		WeightDecay: 0.05, Smoothing: 0.1, ClipGrad: 5, ScheduleFrac: 0.8,
		Recalibrate: 1,
	}
}

// Validate reports the first unusable field, naming the flag it comes
// from; a NaN or infinite rate is never usable.
func (c Config) Validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("epochs must be >= 1, got %d", c.Epochs)
	case c.Batch < 1 || c.Batch > MaxBatch:
		return fmt.Errorf("batch must be in [1, %d], got %d", MaxBatch, c.Batch)
	case c.EvalBatch < 1 || c.EvalBatch > MaxBatch:
		return fmt.Errorf("eval-batch must be in [1, %d], got %d", MaxBatch, c.EvalBatch)
	case !(c.LR > 0) || !finite(c.LR):
		return fmt.Errorf("lr must be a positive number, got %g", c.LR)
	case !(c.MinLR >= 0 && c.MinLR <= c.LR):
		return fmt.Errorf("min-lr must be in [0, lr %g], got %g", c.LR, c.MinLR)
	case !(c.WarmupLR >= 0) || !finite(c.WarmupLR):
		return fmt.Errorf("warmup-lr must be >= 0, got %g", c.WarmupLR)
	case !(c.WarmupEpoch >= 0) || !finite(c.WarmupEpoch):
		return fmt.Errorf("warmup-epochs must be >= 0, got %g", c.WarmupEpoch)
	case !(c.WeightDecay >= 0) || !finite(c.WeightDecay):
		return fmt.Errorf("weight-decay must be >= 0, got %g", c.WeightDecay)
	case !(c.Smoothing >= 0 && c.Smoothing < 1):
		return fmt.Errorf("smoothing must be in [0, 1), got %g", c.Smoothing)
	case !(c.ClipGrad >= 0) || !finite(c.ClipGrad):
		return fmt.Errorf("clip-grad must be >= 0 (0 = off), got %g", c.ClipGrad)
	case c.ScheduleT < 0:
		return fmt.Errorf("schedule-t must be >= 0, got %d", c.ScheduleT)
	case !(c.ScheduleFrac >= 0 && c.ScheduleFrac <= 1):
		return fmt.Errorf("schedule-frac must be in [0, 1], got %g", c.ScheduleFrac)
	case c.Recalibrate < 0:
		return fmt.Errorf("recalibrate must be >= 0, got %d", c.Recalibrate)
	}
	return nil
}

// StepRecord is one optimizer step of the training curves.
type StepRecord struct {
	Step     int64   `json:"step"` // 1-based: the number of updates done
	Epoch    int     `json:"epoch"`
	Loss     float64 `json:"loss"`
	Acc      float64 `json:"acc"` // training-batch accuracy
	LR       float64 `json:"lr"`
	Lambda   float64 `json:"lambda"` // lambda this step's forward used
	GradNorm float64 `json:"grad_norm"`
}

// EpochRecord summarises one epoch, with the test-set evaluation.
type EpochRecord struct {
	Epoch     int     `json:"epoch"` // 1-based
	Step      int64   `json:"step"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	TestLoss  float64 `json:"test_loss"`
	TestAcc   float64 `json:"test_acc"`
	Lambda    float64 `json:"lambda"` // lambda after the epoch
	ImgPerSec float64 `json:"images_per_s"`
	Seconds   float64 `json:"seconds"` // training time of the epoch, without evaluation
}

// Reporter receives progress; the CLI shows it as a bar or log lines.
// Every method may be a no-op.
type Reporter interface {
	// Begin starts a phase ("epoch 3/10", "recalibrate 1/1", "eval") of total steps.
	Begin(phase string, total int)
	// Step reports progress within the phase; rec is nil outside training.
	Step(done int, rec *StepRecord, imagesPerSec float64)
	// Epoch reports a finished epoch.
	Epoch(rec EpochRecord)
}

// Trainer runs the training loop and owns every piece of state a resume
// needs: model parameters and buffers (through Model), AdamW moments, the
// step counter and the random stream.
type Trainer struct {
	Cfg   Config
	Model Model
	Train Dataset
	Test  Dataset
	Opt   *AdamW
	Sched Schedule
	// Step is the number of optimizer updates done.
	Step int64
	// ItersPerEpoch is Train.Len()/Batch (the last partial batch is dropped,
	// as the official loader does, so BatchNorm never sees a tiny batch).
	ItersPerEpoch int64
	// ScheduleT is the PRepBN length actually set on the model.
	ScheduleT int64
	// RNG drives data order and augmentation; its state is checkpointed.
	RNG *rand.PCG
	// Steps and Epochs are the curves so far (Steps only of this process;
	// Epochs survive a resume through the checkpoint).
	Steps  []StepRecord
	Epochs []EpochRecord
	// Report receives progress (nil: silent).
	Report Reporter
	// Meta holds extra metadata entries Save writes (e.g. the dataset name).
	Meta map[string]string
	// OnEpoch runs after each epoch's evaluation, e.g. to save a checkpoint.
	OnEpoch func(t *Trainer, rec EpochRecord) error
	// TrainSeconds and TrainImages accumulate pure training time (data
	// loading included, evaluation excluded) for the throughput figure.
	TrainSeconds float64
	TrainImages  int64
	// Context stops Run at the next step boundary once cancelled (e.g. by
	// NotifySignals); Run then returns an *Interrupted. nil: never.
	Context context.Context

	final    *FinalEval // set once the run is complete (Restore, RunDir)
	rng      *rand.Rand
	ce       nn.CrossEntropy
	evalCE   nn.CrossEntropy
	x        *tensor.Tensor
	labels   []int
	perm     []int
	permEp   int
	epLoss   float64
	epHits   int64
	epImages int64
}

// NewTrainer prepares a fresh run: it sets the PRepBN schedule length on
// the model (T = ScheduleT, or ScheduleFrac x total steps) and builds the
// optimizer and learning-rate schedule.
func NewTrainer(cfg Config, m Model, trainSet, testSet Dataset) (*Trainer, error) {
	if cfg.EvalBatch == 0 {
		cfg.EvalBatch = 256
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if trainSet == nil || testSet == nil {
		return nil, errors.New("train: training and test sets are required")
	}
	iters := int64(trainSet.Len() / cfg.Batch)
	if iters < 1 {
		return nil, fmt.Errorf("batch %d is larger than the training set (%d images)", cfg.Batch, trainSet.Len())
	}
	t := &Trainer{Cfg: cfg, Model: m, Train: trainSet, Test: testSet, ItersPerEpoch: iters, permEp: -1}
	total := iters * int64(cfg.Epochs)
	t.ScheduleT = cfg.ScheduleT
	if t.ScheduleT == 0 {
		t.ScheduleT = max(1, int64(math.Round(cfg.ScheduleFrac*float64(total))))
	}
	models.SetSchedule(m, m.Config().NormSpec().Warm, t.ScheduleT)
	t.Sched = Schedule{
		BaseLR: cfg.LR, WarmupLR: cfg.WarmupLR, MinLR: cfg.MinLR,
		WarmupSteps: int64(math.Round(cfg.WarmupEpoch * float64(iters))), TotalSteps: total,
	}
	t.Opt = NewAdamW(m.Params(), cfg.WeightDecay)
	t.RNG = rand.NewPCG(cfg.Seed, 0x5eed_51ab)
	t.rng = rand.New(t.RNG)
	t.ce.Smoothing = float32(cfg.Smoothing)
	return t, nil
}

// TotalSteps is the number of optimizer steps of the whole run.
func (t *Trainer) TotalSteps() int64 { return t.ItersPerEpoch * int64(t.Cfg.Epochs) }

// splitmix64 derives independent seeds from (seed, counter) pairs so that
// data order and drop path depend only on the epoch/step, never on how a
// run was split by resumes.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// permutation returns the data order of epoch ep, derived from the seed so
// that a resume in the middle of an epoch sees the same order.
func (t *Trainer) permutation(ep int, tag uint64) []int {
	if t.permEp == ep && tag == 0 {
		return t.perm
	}
	n := t.Train.Len()
	if cap(t.perm) < n {
		t.perm = make([]int, n)
	}
	t.perm = t.perm[:n]
	for i := range t.perm {
		t.perm[i] = i
	}
	r := rand.New(rand.NewPCG(splitmix64(t.Cfg.Seed^tag), uint64(ep)))
	r.Shuffle(n, func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
	t.permEp = ep
	if tag != 0 {
		t.permEp = -1
	}
	return t.perm
}

func (t *Trainer) loadBatch(ds Dataset, idx []int, augment bool, rng *rand.Rand) (*tensor.Tensor, []int, error) {
	c, h, w := ds.Shape()
	x := tensor.Ensure(&t.x, len(idx), c, h, w)
	if cap(t.labels) < len(idx) {
		t.labels = make([]int, len(idx))
	}
	labels := t.labels[:len(idx)]
	if err := ds.Batch(idx, augment, rng, x.Data, labels); err != nil {
		return nil, nil, err
	}
	return x, labels, nil
}

// hits counts rows whose arg-max logit equals the label.
func hits(logits *tensor.Tensor, labels []int) int {
	n, k := logits.Rows(), logits.Cols()
	h := 0
	for i := 0; i < n; i++ {
		row := logits.Data[i*k : (i+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == labels[i] {
			h++
		}
	}
	return h
}

// TrainStep runs one optimizer step on the next batch.
func (t *Trainer) TrainStep() (StepRecord, error) {
	ep := int(t.Step / t.ItersPerEpoch)
	i := int(t.Step % t.ItersPerEpoch)
	b := t.Cfg.Batch
	perm := t.permutation(ep, 0)
	x, labels, err := t.loadBatch(t.Train, perm[i*b:(i+1)*b], true, t.rng)
	if err != nil {
		return StepRecord{}, fmt.Errorf("training batch %d of epoch %d: %w", i, ep+1, err)
	}
	lambda := models.Lambda(t.Model)
	t.Model.SetDropPathSeed(splitmix64(t.Cfg.Seed ^ splitmix64(uint64(t.Step)+1)))
	logits, err := t.Model.Forward(x, nn.Train)
	if err != nil {
		return StepRecord{}, err
	}
	loss := t.ce.Forward(logits, labels)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		// Re-run the batch with every norm watched to name the layer.
		where := nn.LocateNonFinite(t.Model, t.Model.Norms(), func() error { _, err := t.Model.Forward(x, nn.Train); return err })
		return StepRecord{}, fmt.Errorf("step %d: loss is %v; %s (lambda %.4f): training diverged; try a lower --lr or a longer schedule", t.Step+1, loss, where, lambda)
	}
	h := hits(logits, labels)
	params := t.Opt.Params()
	nn.ZeroGrads(params)
	t.Model.Backward(t.ce.Backward())
	gn := ClipGradNorm(params, t.Cfg.ClipGrad)
	if !nn.IsFinite(gn) { // stop before the update writes it into the weights
		return StepRecord{}, fmt.Errorf("step %d: gradient norm is %v (loss %.4g); %v: training diverged; try a lower --lr or a longer schedule", t.Step+1, gn, loss, nn.CheckFiniteGrads(params))
	}
	lr := t.Sched.LR(t.Step)
	t.Opt.Step(lr)
	t.Step++
	t.epLoss += loss * float64(b)
	t.epHits += int64(h)
	t.epImages += int64(b)
	return StepRecord{Step: t.Step, Epoch: ep + 1, Loss: loss, Acc: float64(h) / float64(b), LR: lr, Lambda: lambda, GradNorm: gn}, nil
}

// Run trains until Step reaches stop (capped at TotalSteps), evaluating on
// the test set at every epoch end and calling OnEpoch.
func (t *Trainer) Run(stop int64) error {
	stop = min(stop, t.TotalSteps())
	for t.Step < stop {
		ep := int(t.Step / t.ItersPerEpoch)
		end := min(stop, int64(ep+1)*t.ItersPerEpoch)
		if t.Report != nil {
			t.Report.Begin(fmt.Sprintf("epoch %d/%d", ep+1, t.Cfg.Epochs), int(t.ItersPerEpoch))
		}
		epStart := time.Now()
		for t.Step < end {
			if t.Step%t.ItersPerEpoch != 0 {
				if err := hook(HookMidEpoch); err != nil {
					return err
				}
			}
			if err := interrupted(t.Context, t.Step, ""); err != nil {
				return err
			}
			start := time.Now()
			rec, err := t.TrainStep()
			if err != nil {
				return err
			}
			dt := time.Since(start).Seconds()
			t.TrainSeconds += dt
			t.TrainImages += int64(t.Cfg.Batch)
			t.Steps = append(t.Steps, rec)
			if t.Report != nil {
				ips := 0.0
				if s := time.Since(epStart).Seconds(); s > 0 {
					ips = float64(t.epImages) / s
				}
				t.Report.Step(int(t.Step-int64(ep)*t.ItersPerEpoch), &rec, ips)
			}
		}
		if t.Step%t.ItersPerEpoch != 0 {
			break // stopped mid-epoch (a test or a partial run)
		}
		secs := time.Since(epStart).Seconds()
		testLoss, testAcc, err := t.Evaluate(t.Test)
		if err != nil {
			return err
		}
		rec := EpochRecord{Epoch: ep + 1, Step: t.Step, TestLoss: testLoss, TestAcc: testAcc, Lambda: models.Lambda(t.Model), Seconds: secs}
		if t.epImages > 0 {
			rec.TrainLoss = t.epLoss / float64(t.epImages)
			rec.TrainAcc = float64(t.epHits) / float64(t.epImages)
			rec.ImgPerSec = float64(t.epImages) / secs
		}
		t.epLoss, t.epHits, t.epImages = 0, 0, 0
		t.Epochs = append(t.Epochs, rec)
		if t.Report != nil {
			t.Report.Epoch(rec)
		}
		if t.OnEpoch != nil {
			if err := t.OnEpoch(t, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// Evaluate returns the mean (unsmoothed) cross-entropy and the accuracy of
// the model in eval mode (pure RepBN path, running statistics) on ds.
func (t *Trainer) Evaluate(ds Dataset) (loss, acc float64, err error) {
	return Evaluate(t.Model, ds, t.Cfg.EvalBatch, t.Report, &t.x, &t.labels)
}

// Evaluate runs m in eval mode over ds in batches of size batch and returns
// the mean unsmoothed cross-entropy and the accuracy. x and labels are
// reusable buffers (may point to nil).
func Evaluate(m interface {
	Forward(x *tensor.Tensor, mode nn.Mode) (*tensor.Tensor, error)
}, ds Dataset, batch int, rep Reporter, x **tensor.Tensor, labels *[]int) (loss, acc float64, err error) {
	if x == nil {
		x = new(*tensor.Tensor)
	}
	if labels == nil {
		labels = new([]int)
	}
	var ce nn.CrossEntropy
	n := ds.Len()
	if n == 0 {
		return 0, 0, errors.New("evaluation set is empty")
	}
	c, h, w := ds.Shape()
	idx := make([]int, 0, batch)
	totalHits := 0
	nb := (n + batch - 1) / batch
	if rep != nil {
		rep.Begin("eval", nb)
	}
	for bi := 0; bi < nb; bi++ {
		lo, hi := bi*batch, min(n, (bi+1)*batch)
		idx = idx[:0]
		for i := lo; i < hi; i++ {
			idx = append(idx, i)
		}
		xb := tensor.Ensure(x, len(idx), c, h, w)
		if cap(*labels) < len(idx) {
			*labels = make([]int, len(idx))
		}
		lb := (*labels)[:len(idx)]
		if err := ds.Batch(idx, false, nil, xb.Data, lb); err != nil {
			return 0, 0, fmt.Errorf("evaluation batch %d: %w", bi, err)
		}
		logits, err := m.Forward(xb, nn.Eval)
		if err != nil {
			return 0, 0, err
		}
		loss += ce.Forward(logits, lb) * float64(len(idx))
		totalHits += hits(logits, lb)
		if rep != nil {
			rep.Step(bi+1, nil, 0)
		}
	}
	return loss / float64(n), float64(totalHits) / float64(n), nil
}

// Recalibrate runs Cfg.Recalibrate passes over the training set with the
// training augmentation, updating only BatchNorm running statistics
// (docs/method.md 1.4; the official recipe uses 10 passes at ImageNet scale).
func (t *Trainer) Recalibrate() error {
	b := t.Cfg.EvalBatch
	n := t.Train.Len()
	nb := n / b
	if nb == 0 {
		nb, b = 1, n
	}
	for pass := 0; pass < t.Cfg.Recalibrate; pass++ {
		perm := t.permutation(pass, 0xbadc0ffee)
		if t.Report != nil {
			t.Report.Begin(fmt.Sprintf("recalibrate %d/%d", pass+1, t.Cfg.Recalibrate), nb)
		}
		for i := 0; i < nb; i++ {
			x, _, err := t.loadBatch(t.Train, perm[i*b:(i+1)*b], true, t.rng)
			if err != nil {
				return fmt.Errorf("recalibration batch %d: %w", i, err)
			}
			if _, err := t.Model.Forward(x, nn.Recalibrate); err != nil {
				return err
			}
			if t.Report != nil {
				t.Report.Step(i+1, nil, 0)
			}
		}
	}
	return nil
}

// ImagesPerSecond is the measured training throughput so far.
func (t *Trainer) ImagesPerSecond() float64 {
	if t.TrainSeconds == 0 {
		return 0
	}
	return float64(t.TrainImages) / t.TrainSeconds
}
