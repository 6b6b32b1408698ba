package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/train"
	"github.com/slabml/slab/train/plot"
	"github.com/slabml/slab/train/progress"
)

func init() {
	register(&command{Name: "train", Summary: "train a vision model on Fashion-MNIST or MNIST", Run: runCmd(cmdTrain), OwnSignals: true})
}

// trainResult is the JSON of slab train.
type trainResult = train.Result

// recipeFlags are the flags a --resume takes from the checkpoint instead.
var recipeFlags = []string{"model", "norm", "attn", "epochs", "batch", "lr", "min-lr", "warmup-lr", "warmup-epochs",
	"weight-decay", "smoothing", "clip-grad", "drop-path", "schedule-t", "schedule-frac", "recalibrate", "seed", "data",
	"limit-train", "limit-test"}

func cmdTrain(args []string) error {
	start := time.Now()
	def := train.DefaultConfig()
	fs := newFlags("train", "train --model NAME --data fashion-mnist --epochs N --batch B --lr LR --out DIR [--resume FILE] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout (progress goes to stderr)")
	modelName := fs.String("model", "slab_deit_mini_28", "registry name (see slab models)")
	norm := fs.String("norm", "", "override the norm: layernorm|repbn|prepbn|batchnorm")
	attn := fs.String("attn", "", "override the attention: softmax|sla")
	dropPath := fs.Float64("drop-path", -1, "max drop-path rate (default: the model's)")
	dataName := fs.String("data", "fashion-mnist", "dataset: fashion-mnist or mnist")
	dataDir := fs.String("data-dir", "", "directory of the IDX files (default /usr/share/datasets/<data>)")
	limitTrain := fs.Int("limit-train", 0, "use only the first N training images (0 = all)")
	limitTest := fs.Int("limit-test", 0, "use only the first N test images (0 = all)")
	epochs := fs.Int("epochs", def.Epochs, "training epochs")
	batch := fs.Int("batch", def.Batch, "batch size")
	evalBatch := fs.Int("eval-batch", def.EvalBatch, "batch size of evaluation and re-calibration")
	lr := fs.Float64("lr", def.LR, "peak learning rate (AdamW)")
	minLR := fs.Float64("min-lr", def.MinLR, "final learning rate of the cosine decay")
	warmupLR := fs.Float64("warmup-lr", def.WarmupLR, "learning rate at the first step")
	warmupEpochs := fs.Float64("warmup-epochs", def.WarmupEpoch, "linear warm-up length in epochs")
	wd := fs.Float64("weight-decay", def.WeightDecay, "decoupled weight decay (not on biases, norms, alpha, pos_embed)")
	smoothing := fs.Float64("smoothing", def.Smoothing, "label smoothing")
	clip := fs.Float64("clip-grad", def.ClipGrad, "max global gradient norm (0 = no clipping)")
	schedT := fs.Int64("schedule-t", 0, "PRepBN schedule length T in steps (0 = --schedule-frac of all steps)")
	schedFrac := fs.Float64("schedule-frac", def.ScheduleFrac, "T as a fraction of all training steps")
	recal := fs.Int("recalibrate", -1, "BN re-calibration passes after training (default: 1 for BatchNorm-based norms, 0 otherwise)")
	out := fs.String("out", "", "output directory (checkpoint, curve log, plot)")
	resume := fs.String("resume", "", "continue bit for bit from this training checkpoint")
	force := fs.Bool("force", false, "replace the run --out holds (checkpoint, log, plot)")
	threads := threadsFlag(fs, "threads (0 = all cores); the same seed gives the identical run at any thread count")
	seed := fs.Uint64("seed", 0, "seed of weights, data order, augmentation and drop path")
	stopEpoch := fs.Int("stop-epoch", 0, "stop after this epoch (0 = run all); continue later with --resume")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flagRange(fs, "[1, inf)", "epochs")
	flagRange(fs, "[1, 65536]", "batch", "eval-batch")
	flagRange(fs, "(0, inf)", "lr")
	flagRange(fs, "[0, inf)", "min-lr", "warmup-lr", "warmup-epochs", "weight-decay", "clip-grad", "schedule-t", "limit-train", "limit-test", "stop-epoch")
	flagRange(fs, "[0, 1)", "smoothing", "drop-path")
	flagRange(fs, "[0, 1]", "schedule-frac")
	flagRange(fs, "[0, 100]", "recalibrate")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return flagErr("out", "is required (directory for the checkpoint, log and plot)")
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()

	var (
		family *models.Family
		cfg    models.Config
		tcfg   train.Config
		rs     *train.Resumed
		extra  = map[string]string{}
	)
	if *resume != "" {
		if rs, err = train.ReadResume(*resume); err != nil {
			return flagErr("resume", "%v", err)
		}
		if rs.Finished() {
			fmt.Fprintf(info(*jsonOut), "%s is a finished run (%d epochs): nothing to do\n", *resume, rs.Train.Epochs)
			return jsonOr(rs.FinishedResult(*resume), nil, *jsonOut)
		}
		family, cfg, tcfg, extra = rs.Family, rs.Model, rs.Train, rs.Data
		*dataName = extra["data"]
		var ignored []string
		dirSet := false
		fs.Visit(func(f *flag.Flag) {
			dirSet = dirSet || f.Name == "data-dir"
			if slices.Contains(recipeFlags, f.Name) {
				ignored = append(ignored, "--"+f.Name)
			}
		})
		if !dirSet {
			*dataDir = extra["data_dir"]
		}
		fmt.Sscan(extra["limit_train"], limitTrain)
		fmt.Sscan(extra["limit_test"], limitTest)
		if len(ignored) > 0 {
			fmt.Fprintf(stderr, "slab train: resuming %s: the recipe comes from the checkpoint; ignoring %s\n", *resume, strings.Join(ignored, " "))
		}
	} else {
		dp := ""
		if *dropPath >= 0 {
			dp = fmt.Sprint(*dropPath)
		}
		var e *models.Entry
		if e, cfg, err = resolveModel(*modelName, map[string]string{"norm": *norm, "attn": *attn, "drop-path": dp}); err != nil {
			return err
		}
		family = e.Family
		if family.Task != models.TaskClassify {
			return flagErr("model", "%s is a %s model; slab train trains image classifiers (see slab train-lm)", *modelName, family.Task)
		}
		if cfg.NormSpec().Kind == nn.NormNone {
			return flagErr("norm", "a folded model (norm none) cannot be trained")
		}
		tcfg = train.Config{Epochs: *epochs, Batch: *batch, EvalBatch: *evalBatch, LR: *lr, WarmupLR: *warmupLR, MinLR: *minLR,
			WarmupEpoch: *warmupEpochs, WeightDecay: *wd, Smoothing: *smoothing, ClipGrad: *clip, ScheduleT: *schedT,
			ScheduleFrac: *schedFrac, Recalibrate: *recal, Seed: *seed}
		if tcfg.Recalibrate < 0 {
			tcfg.Recalibrate = map[bool]int{true: 1}[foldable(cfg)]
		}
		extra = map[string]string{"data": *dataName, "data_dir": *dataDir, "limit_train": fmt.Sprint(*limitTrain), "limit_test": fmt.Sprint(*limitTest)}
	}
	spec := train.VisionSpec{Family: family, Model: cfg, Recipe: tcfg, Data: *dataName, DataDir: *dataDir,
		LimitTrain: *limitTrain, LimitTest: *limitTest, Extra: extra, Resume: rs, ResumePath: *resume}
	if err := spec.Check(); err != nil {
		return modelErr(err, "")
	}
	claim, err := claimOut("train", *out, *resume, *force)
	if err != nil {
		return err
	}
	defer claim.Release()
	vs, err := train.NewVisionSetup(spec)
	if err != nil {
		return modelErr(err, "")
	}
	m, trainSet, testSet, tr := vs.Model, vs.Train, vs.Test, vs.Trainer
	dir, err := claim.Open(tr, rs != nil)
	if err != nil {
		return flagErr("out", "%v", err)
	}
	prog := info(*jsonOut)
	tr.Report = progress.NewReporter(prog, progress.IsTerminal(prog))
	fmt.Fprintf(prog, "training %s (norm %s, attn %s, %d params, %.4f GFLOP/image) on %s: %d train / %d test images, %d epochs x %d steps, batch %d, lr %g, T %d, %d threads\n",
		configName(cfg), normOf(m), cfg.Get("attn"), models.NumParams(m), float64(cfg.FLOPs())/1e9, *dataName, trainSet.Len(), testSet.Len(),
		tcfg.Epochs, tr.ItersPerEpoch, tcfg.Batch, tcfg.LR, tr.ScheduleT, kernels.Threads())
	dir.Attach(tr, func(steps []train.StepRecord, epochs []train.EpochRecord) error {
		return plot.WritePlot(dir.Plot, configName(cfg), steps, epochs)
	})
	stop := tr.TotalSteps()
	if *stopEpoch > 0 {
		stop = min(stop, int64(*stopEpoch)*tr.ItersPerEpoch)
	}
	ctx, stopSignals := trainContext()
	defer stopSignals()
	tr.Context = ctx
	r, err := dir.Run(tr, stop, prog)
	if err != nil {
		return err
	}
	r.Data, r.WallSeconds = *dataName, time.Since(start).Seconds()
	if *jsonOut {
		return emitJSON(r)
	}
	fmt.Fprintf(stdout, "%s: test accuracy %.2f%% (loss %.4f), %.0f training images/s (%.1f GFLOP/s at 3x forward FLOPs), checkpoint %s\n",
		r.Model, 100*r.TestAcc, r.TestLoss, r.TrainImgPerSec, r.TrainGFLOPPerS, dir.Checkpoint)
	return nil
}
