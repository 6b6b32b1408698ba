package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/slabml/slab/bench"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
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
	// points up to the trainer's step; a fresh run starts it anew.
	Dir       string
	SaveEvery int
	Resumed   bool
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
	var ckptPath, logPath string
	if r.Dir != "" {
		if err := os.MkdirAll(r.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("run directory: %v", err)
		}
		ckptPath, logPath = filepath.Join(r.Dir, "ckpt.safetensors"), filepath.Join(r.Dir, "log.jsonl")
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
		os.Remove(logPath)
		if err := AppendLMLog(logPath, keep); err != nil {
			return nil, fmt.Errorf("run directory: %v", err)
		}
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
			fmt.Fprintf(w, "step %5d  loss %.4f  val loss %.4f  val ppl %8.3f  lambda %.3f  lr %.2e  %.0f tok/s  %.0f per CPU-time  %.0f s\n",
				step, ema, vl, math.Exp(vl), models.Lambda(m), lr, tps, cps, time.Since(t0).Seconds())
		}
		if pt.ValLoss == 0 && r.LogEvery > 0 && step%r.LogEvery == 0 {
			tps, cps := rates(step)
			fmt.Fprintf(w, "step %5d  loss %.4f  lambda %.3f  lr %.2e  %.0f tok/s  %.0f per CPU-time  %.0f s\n",
				step, ema, models.Lambda(m), lr, tps, cps, time.Since(t0).Seconds())
		}
		res.Curve = append(res.Curve, pt)
		if ckptPath != "" && ((r.SaveEvery > 0 && step%r.SaveEvery == 0) || last) {
			if err := t.Save(ckptPath); err != nil {
				return nil, err
			}
			if err := AppendLMLog(logPath, res.Curve); err != nil {
				return nil, err
			}
			res.Curve, res.Checkpoint = res.Curve[:0], ckptPath
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
	vl, vt, err := EvaluateLM(m, r.Validation, batch, seq, 0)
	if err != nil {
		return nil, fmt.Errorf("validation: %v", err)
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

// AppendLMLog appends curve points to a run's JSON-lines log.
func AppendLMLog(path string, pts []LMPoint) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(fh)
	for _, p := range pts {
		if err := enc.Encode(p); err != nil {
			fh.Close()
			return err
		}
	}
	return fh.Close()
}

// ReadLMLog reads the whole curve of a run's log.
func ReadLMLog(path string) ([]LMPoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pts []LMPoint
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var p LMPoint
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		pts = append(pts, p)
	}
	return pts, nil
}
