package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/slabml/slab/bench"
	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// LMPoint is one point of a language-model run's curve: one line of its
// log.jsonl.
type LMPoint struct {
	Step    int     `json:"step"`
	Loss    float64 `json:"train_loss"`
	ValLoss Metric  `json:"val_loss,omitempty"`
}

// LMResult is the summary of a language-model run (the JSON of slab
// train-lm). RunLM fills the run's figures; the caller names the model
// (Model, Norm, RepBNInit, Params, LR, Tokenizer, Vocab).
type LMResult struct {
	Model          string  `json:"model"`
	Norm           string  `json:"norm"`
	RepBNInit      string  `json:"repbn_init,omitempty"`
	Params         int64   `json:"params"`
	Steps          int     `json:"steps"`
	Batch          int     `json:"batch"`
	Seq            int     `json:"seq"`
	LR             float64 `json:"lr"`
	FinalTrainLoss float64 `json:"final_train_loss"`
	ValLoss        Metric  `json:"val_loss"`
	ValPPL         Metric  `json:"val_ppl"`
	ValTokens      int     `json:"val_tokens"`
	Seconds        float64 `json:"seconds"`
	TokensPerSec   float64 `json:"train_tokens_per_s"`
	// CPUTokensPerSec is tokens per CPU-second of the process times the
	// threads: what the loop would reach with the cores to itself (the
	// validation passes inside the loop are included in both rates).
	CPUTokensPerSec float64   `json:"train_tokens_per_cpu_s"`
	Tokens          int64     `json:"train_tokens"`
	Threads         int       `json:"threads"`
	LoadStart       string    `json:"loadavg_start,omitempty"`
	LoadEnd         string    `json:"loadavg_end,omitempty"`
	Tokenizer       string    `json:"tokenizer"`
	Vocab           int       `json:"vocab"`
	Date            string    `json:"date"`
	Lambda          float64   `json:"final_lambda,omitempty"`
	Checkpoint      string    `json:"checkpoint,omitempty"`
	Curve           []LMPoint `json:"curve"`
	// NothingToDo is set when the trainer was at its last step already (a
	// resume of a finished run): RunLM trained, evaluated and wrote nothing.
	NothingToDo bool `json:"nothing_to_do,omitempty"`
}

// LMRun says how RunLM validates, reports and saves.
type LMRun struct {
	Validation []int // validation token stream
	// EvalEvery validates every N steps (0: only at the end) on up to
	// EvalBatches windows (0: all); LogEvery prints the training loss
	// every N steps (0: only with validation).
	EvalEvery, EvalBatches, LogEvery int
	// Dir is the run directory ("" = none): ckpt.safetensors, written
	// every SaveEvery steps (0: only at the end), and log.jsonl, which
	// always holds what the checkpoint holds. Resumed keeps the log's
	// points up to the trainer's step; a fresh run starts it anew. The
	// directory is claimed (ClaimRunDir: locked for the run, a run it
	// holds refused unless Resumed or Force) unless Claim is set (the
	// caller claimed it before loading anything).
	Dir       string
	SaveEvery int
	Resumed   bool
	Force     bool
	Claim     *Claim
	// Context stops the run at the next step boundary once cancelled
	// (e.g. NotifySignals): RunLM saves the step it reached (when Dir is
	// set) and returns an *Interrupted.
	Context context.Context
	// Progress receives one line per logged step (nil: none).
	Progress io.Writer
	// LoopDone, when set, is called after the last step, before the
	// final evaluation (to stop a profile of the loop alone).
	LoopDone func()
}

// RunLM trains t from its current step to t.Cfg.Steps, validating, logging
// and saving as r says, then evaluates on the whole validation stream.
func RunLM(t *LMTrainer, r LMRun) (*LMResult, error) {
	steps, batch, seq := t.Cfg.Steps, t.Cfg.Batch, t.Cfg.Seq
	w := r.Progress
	if w == nil {
		w = io.Discard
	}
	if t.Step >= int64(steps) {
		// A finished run: nothing to train, evaluate or write.
		fmt.Fprintf(w, "the run is at step %d of %d already: nothing to do\n", t.Step, steps)
		res := &LMResult{Steps: steps, Batch: batch, Seq: seq, Threads: kernels.Threads(), Date: time.Now().UTC().Format(time.RFC3339),
			NothingToDo: true, Lambda: models.Lambda(t.Model)}
		if r.Dir != "" {
			res.Checkpoint = filepath.Join(r.Dir, CheckpointFile)
			res.Curve, _ = ReadLMLog(filepath.Join(r.Dir, LogFile))
		}
		return res, nil
	}
	// The final validation reads batch windows of seq+1 tokens: a corpus
	// too short for it must fail now, not after the training.
	if need := batch*seq + 1; len(r.Validation) < need {
		return nil, inputErr("data", "the validation split has %d tokens, fewer than one batch of %d x %d (+1) needs: use more text or a smaller --batch/--seq", len(r.Validation), batch, seq)
	}
	var ckptPath, logPath string
	saved := int64(-1)
	if r.Dir != "" {
		c := r.Claim
		if c == nil {
			mode := Fresh
			switch {
			case r.Force:
				mode = Force
			case r.Resumed:
				mode = Resume
			}
			var err error
			if c, err = ClaimRunDir(r.Dir, mode, ""); err != nil {
				return nil, inputErr("out", "%v", err)
			}
			defer c.Release()
		}
		if r.Resumed && c.Mode != Force && c.has(CheckpointFile) {
			saved = t.Step
		}
		if err := c.Clear(); err != nil {
			return nil, fmt.Errorf("run directory: %v", err)
		}
		ckptPath, logPath = filepath.Join(r.Dir, CheckpointFile), filepath.Join(r.Dir, LogFile)
		var keep []LMPoint
		if r.Resumed {
			pts, err := ReadLMLog(logPath)
			if err != nil && !os.IsNotExist(err) {
				return nil, err
			}
			for _, p := range pts {
				if int64(p.Step) <= t.Step {
					keep = append(keep, p)
				}
			}
		}
		if err := writeAtomic(logPath, func(w io.Writer) error { return encodeLMLog(w, keep) }); err != nil {
			return nil, fmt.Errorf("run directory: %v", err)
		}
	}
	// save appends the curve since the last save to the log, then
	// replaces the checkpoint: a kill in between leaves the log ahead,
	// which a resume cuts back.
	save := func(res *LMResult) error {
		if err := hook(HookBeforeLog); err != nil {
			return err
		}
		if err := AppendLMLog(logPath, res.Curve); err != nil {
			return err
		}
		res.Curve = res.Curve[:0]
		if err := t.Save(ckptPath); err != nil {
			return err
		}
		saved, res.Checkpoint = t.Step, ckptPath
		return nil
	}
	m := t.Model
	start := int(t.Step)
	res := &LMResult{Steps: steps, Batch: batch, Seq: seq, LoadStart: bench.LoadAvg(), Threads: kernels.Threads(),
		Date: time.Now().UTC().Format(time.RFC3339)}
	c0 := bench.CPUTime()
	t0 := time.Now()
	rates := func(step int) (float64, float64) {
		el, done := time.Since(t0).Seconds(), float64((step-start)*batch*seq)
		cpu := (bench.CPUTime() - c0).Seconds() / float64(kernels.Threads())
		if cpu <= 0 {
			return done / el, 0
		}
		return done / el, done / cpu
	}
	var ema float64
	for t.Step < int64(steps) {
		if int(t.Step) > start {
			if err := hook(HookMidEpoch); err != nil {
				return nil, err
			}
		}
		if err := interrupted(r.Context, t.Step, ""); err != nil {
			return nil, stopLM(err, t, ckptPath, saved, res, save)
		}
		lr := t.Sched.LR(t.Step)
		l, err := t.TrainStep()
		if err != nil {
			return nil, err
		}
		step := int(t.Step)
		if step == start+1 {
			ema = l
		}
		ema = 0.9*ema + 0.1*l
		pt := LMPoint{Step: step, Loss: l}
		last := step == steps
		if last || (r.EvalEvery > 0 && step%r.EvalEvery == 0) {
			vl, _, err := EvaluateLM(m, r.Validation, batch, seq, r.EvalBatches)
			if err != nil {
				return nil, fmt.Errorf("validation: %v", err)
			}
			pt.ValLoss = Metric(vl)
			tps, cps := rates(step)
			fmt.Fprintf(w, "step %5d  loss %.4f  val loss %.4f  val ppl %8.3f  lambda %.3f  lr %.2e  %.0f tok/s  %.0f per CPU-time  %.0f s%s\n",
				step, ema, vl, math.Exp(vl), models.Lambda(m), lr, tps, cps, time.Since(t0).Seconds(), mixNote(m))
		}
		if pt.ValLoss == 0 && r.LogEvery > 0 && step%r.LogEvery == 0 {
			tps, cps := rates(step)
			fmt.Fprintf(w, "step %5d  loss %.4f  lambda %.3f  lr %.2e  %.0f tok/s  %.0f per CPU-time  %.0f s\n",
				step, ema, models.Lambda(m), lr, tps, cps, time.Since(t0).Seconds())
		}
		res.Curve = append(res.Curve, pt)
		if ckptPath != "" && ((r.SaveEvery > 0 && step%r.SaveEvery == 0) || last) {
			if err := save(res); err != nil {
				return nil, err
			}
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	cpu := (bench.CPUTime() - c0).Seconds() / float64(kernels.Threads())
	if r.LoopDone != nil {
		r.LoopDone()
	}
	res.Tokens = int64(steps-start) * int64(batch) * int64(seq)
	res.TokensPerSec = float64(res.Tokens) / res.Seconds
	if cpu > 0 {
		res.CPUTokensPerSec = float64(res.Tokens) / cpu
	}
	res.LoadEnd = bench.LoadAvg()
	res.FinalTrainLoss = ema
	if err := interrupted(r.Context, t.Step, ckptPath); err != nil {
		return nil, err
	}
	vl, vt, err := EvaluateLM(m, r.Validation, batch, seq, 0)
	if err != nil {
		return nil, fmt.Errorf("validation: %v", err)
	}
	if err := interrupted(r.Context, t.Step, ckptPath); err != nil {
		return nil, err
	}
	res.ValLoss, res.ValTokens, res.ValPPL = Metric(vl), vt, Metric(math.Exp(vl))
	res.Lambda = models.Lambda(m)
	if logPath != "" {
		if res.Curve, err = ReadLMLog(logPath); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// stopLM ends a run stopped by its context: the step reached is saved
// (when the run has a directory and the step is not saved yet) and the
// *Interrupted names the checkpoint.
func stopLM(err error, t *LMTrainer, ckptPath string, saved int64, res *LMResult, save func(*LMResult) error) error {
	var ie *Interrupted
	if !errors.As(err, &ie) || ckptPath == "" {
		return err
	}
	if t.Step != saved && t.Step > 0 {
		if serr := save(res); serr != nil {
			return fmt.Errorf("%v; saving the run at step %d failed: %w", ie, t.Step, serr)
		}
		saved = t.Step
	}
	if saved >= 0 {
		ie.Checkpoint = ckptPath
	}
	return ie
}

// AppendLMLog appends curve points to a run's JSON-lines log, in one write.
func AppendLMLog(path string, pts []LMPoint) error {
	var b bytes.Buffer
	if err := encodeLMLog(&b, pts); err != nil {
		return err
	}
	return appendFile(path, b.Bytes())
}

func encodeLMLog(w io.Writer, pts []LMPoint) error {
	enc := json.NewEncoder(w)
	for _, p := range pts {
		if err := enc.Encode(p); err != nil {
			return err
		}
	}
	return nil
}

// ReadLMLog reads the whole curve of a run's log (a torn last line, left
// by a process killed during an append, is ignored).
func ReadLMLog(path string) ([]LMPoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pts []LMPoint
	dec := json.NewDecoder(bytes.NewReader(completeLines(b)))
	for dec.More() {
		var p LMPoint
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		pts = append(pts, p)
	}
	return pts, nil
}

// LMStepOf returns the step of a language-model training checkpoint,
// e.g. to see that a resume of it has nothing left to do before claiming
// a run directory.
func LMStepOf(path string) (int64, error) {
	f, err := checkpoint.Read(path)
	if err != nil {
		return 0, err
	}
	if f.Metadata["format"] != FormatTrain {
		return 0, fmt.Errorf("%s: not a slab training checkpoint (format %q)", path, f.Metadata["format"])
	}
	var st lmState
	if err := json.Unmarshal([]byte(f.Metadata["state"]), &st); err != nil {
		return 0, fmt.Errorf("%s: damaged state metadata: %w", path, err)
	}
	return st.Step, nil
}

// mixNote flags a validation figure taken while a PRepBN schedule still
// mixes in the LayerNorm/RMSNorm branch: evaluation runs the pure-RepBN
// path (as the official code does), whose running statistics are not yet
// those of the trained mix, so the figure can be huge or not finite and
// says nothing of the model's quality until lambda reaches 0.
func mixNote(m models.Model) string {
	for _, s := range m.Norms() {
		if _, ok := (*s.Norm).(*nn.LinearNorm); ok && models.Lambda(m) > 0 {
			return "  (RepBN-only evaluation while lambda > 0: not a quality figure)"
		}
	}
	return ""
}
