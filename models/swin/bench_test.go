package swin_test

import (
	"testing"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/train"
)

// BenchmarkTrainStep times one whole training step of `slab train` on the
// Fashion-MNIST minis at batch 64 (the recipe's batch): forward,
// label-smoothed cross-entropy, backward, clipping and the AdamW update,
// without data loading. The PRepBN models run both branches (lambda in
// (0, 1), the first 80 % of a run). Profile with
//
//	go test -run '^$' -bench TrainStep -benchtime 30x -cpu 2 -cpuprofile /tmp/swin.prof ./models/swin/
func BenchmarkTrainStep(b *testing.B) {
	const batch = 64
	for _, name := range []string{"slab_swin_mini_32", "swin_mini_32", "flatten_swin_mini_32", "swin_mini_prepbn_32"} {
		b.Run(name, func(b *testing.B) {
			m := build(b, name, 0)
			models.SetSchedule(m, 0, 1<<30)
			x := images(1, batch, m.Cfg.InChans, m.Cfg.Input())
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
			for b.Loop() {
				step()
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms/step")
			b.ReportMetric(batch/sec, "images/s")
			b.ReportMetric(3*float64(m.Cfg.FLOPs())*batch/sec/1e9, "GFLOP/s")
		})
	}
}
