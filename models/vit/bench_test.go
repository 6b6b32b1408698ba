package vit_test

import (
	"fmt"
	"testing"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/train"
)

// benchModel builds a registry model, folded when fused is set.
func benchModel(b *testing.B, name string, fused bool) *vit.Model {
	b.Helper()
	m := mustNew(b, name, 0)
	if fused {
		d, err := foldVit(m)
		if err != nil {
			b.Fatal(err)
		}
		m = d
	}
	return m
}

// BenchmarkForward times eval-mode inference (the bench CLI's numbers can
// be cross-checked against it): ms per batch and images/s.
//
//	go test -run '^$' -bench Forward -benchtime 20x ./models/vit/
func BenchmarkForward(b *testing.B) {
	cases := []struct {
		name  string
		fused bool
	}{
		{"deit_tiny", false}, {"deit_tiny_prepbn", true}, {"slab_deit_tiny", false}, {"slab_deit_tiny", true},
		{"deit_mini_28", false}, {"slab_deit_mini_28", false}, {"slab_deit_mini_28", true},
	}
	for _, tc := range cases {
		label := tc.name
		if tc.fused {
			label += "_fused"
		}
		for _, batch := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/B%d", label, batch), func(b *testing.B) {
				m := benchModel(b, tc.name, tc.fused)
				x := randImages(m.Cfg, batch, 1)
				if _, err := m.Forward(x, nn.Eval); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					m.Forward(x, nn.Eval)
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(sec*1e3, "ms/batch")
				b.ReportMetric(float64(batch)/sec, "images/s")
				b.ReportMetric(float64(m.Cfg.FLOPs())*float64(batch)/sec/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkTrainStep times a training forward + backward of the 28px
// models (the optimizer step is not included).
func BenchmarkTrainStep(b *testing.B) {
	for _, name := range []string{"deit_mini_28", "deit_mini_prepbn_28", "slab_deit_mini_28"} {
		b.Run(name+"/B64", func(b *testing.B) {
			m := mustNew(b, name, 0)
			x := randImages(m.Cfg, 64, 1)
			dl := tensor.New(64, m.Cfg.Classes)
			for i := range dl.Data {
				dl.Data[i] = 1e-3
			}
			m.Forward(x, nn.Train)
			m.Backward(dl)
			b.ResetTimer()
			for b.Loop() {
				m.Forward(x, nn.Train)
				m.Backward(dl)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms/step")
			b.ReportMetric(64/sec, "images/s")
		})
	}
}

// BenchmarkTrainStepFull times one whole training step of `slab train` at
// batch 128 on the 28px models: forward, label-smoothed cross-entropy,
// backward, gradient clipping and the AdamW update (no data loading).
// slab_deit_mini_28/mix runs both PRepBN branches (lambda in (0,1), the
// first 80 % of a default run), /bn the RepBN-only steps after the
// schedule. On the shared machines compare cpums/step with -cpu 1.
//
//	go test -run '^$' -bench TrainStepFull -benchtime 20x -cpu 1,2 ./models/vit/
func BenchmarkTrainStepFull(b *testing.B) {
	cases := []struct {
		label, model string
		schedule     int64
	}{
		{"deit_mini_28", "deit_mini_28", 1 << 30},
		{"slab_deit_mini_28/mix", "slab_deit_mini_28", 1 << 30},
		{"slab_deit_mini_28/bn", "slab_deit_mini_28", 0},
	}
	const batch = 128
	for _, tc := range cases {
		b.Run(tc.label, func(b *testing.B) {
			m := mustNew(b, tc.model, 0)
			models.SetSchedule(m, 0, tc.schedule)
			x := randImages(m.Cfg, batch, 1)
			labels := make([]int, batch)
			for i := range labels {
				labels[i] = i % m.Cfg.Classes
			}
			opt := train.NewAdamW(m.Params(), 0.05)
			ce := nn.CrossEntropy{Smoothing: 0.1}
			step := func() {
				logits, err := m.Forward(x, nn.Train)
				if err != nil {
					b.Fatal(err)
				}
				ce.Forward(logits, labels)
				nn.ZeroGrads(m.Params())
				m.Backward(ce.Backward())
				train.ClipGradNorm(m.Params(), 5)
				opt.Step(1e-4)
			}
			step()
			b.ReportAllocs()
			b.ResetTimer()
			c0 := processCPU()
			for b.Loop() {
				step()
			}
			cpu := (processCPU() - c0).Seconds() / float64(b.N)
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms/step")
			b.ReportMetric(batch/sec, "images/s")
			if cpu > 0 {
				// CPU-milliseconds per step: with -cpu 1, the work itself,
				// whatever else runs on the machine.
				b.ReportMetric(cpu*1e3, "cpums/step")
			}
		})
	}
}
