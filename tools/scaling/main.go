// Command scaling times PVT's stage-1 attention (width 64, one head, the
// shape of SLAB-PVT-T and PVT-T-PRepBN) as the input grows from 56x56 to
// 896x896 pixels, i.e. 196 to 50,176 tokens after the stride-4 patch
// embedding, and writes a table (Markdown, stdout), the raw rows (JSON)
// and a log-log PNG:
//
//   - sla: simplified linear attention over all tokens with its 5x5
//     depthwise convolution on V (SLAB-PVT's 'L' stage, docs/method.md 3.2);
//   - sra: spatial-reduction softmax attention, reduction ratio 8 (kernel =
//     stride 8 convolution and a norm before K and V; PVT-PRepBN's 'S'
//     stage; the norm is an eval-mode BatchNorm with its initial
//     statistics, the per-channel affine map a folded model runs);
//   - softmax: full softmax attention over all tokens, up to 448x448 (its
//     N x N score matrix grows as the square: 2.5 GB of float32 at 896).
//
// Every round times each mechanism at each size once, interleaved, so a
// noisy machine slows all rows alike; the table reports medians over
// rounds, the time per token, and each time per token over the same
// mechanism's at 196 tokens (1.0 everywhere = linear in tokens).
//
//	go run ./tools/scaling -rounds 5 -threads 2 -png docs/scaling.png -json /tmp/scaling.json
//
// It lives in tools/ rather than in `slab bench` because it times layers
// on synthetic token maps, not registered models.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

const (
	dim, heads = 64, 1 // PVT stage 1 (tiny, small, medium)
	srRatio    = 8
	dwcKernel  = 5
	maxSoftmax = 448 // input side; above it the score matrix alone is > 600 MB
)

// row is one mechanism at one input size.
type row struct {
	Mechanism string    `json:"mechanism"`
	Side      int       `json:"input_side"`
	Tokens    int       `json:"tokens"`
	Ms        float64   `json:"median_ms"`
	NsPerTok  float64   `json:"ns_per_token"`
	Rel       float64   `json:"per_token_vs_smallest"`
	Rounds    []float64 `json:"round_ms"`
}

// layer is a mechanism built for one token map.
type layer struct {
	name string
	fwd  func(x *tensor.Tensor) *tensor.Tensor
}

func fill(ps []*nn.Param, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	for _, p := range ps {
		for i := range p.W.Data {
			p.W.Data[i] = float32(rng.NormFloat64() * 0.02)
		}
	}
}

func build(mech string, g int) layer {
	switch mech {
	case "sla":
		s := nn.NewSLA("attn", dim, heads, g, g, dwcKernel, true)
		fill(s.Params(), 1)
		return layer{mech, s.Forward}
	case "sra":
		norm := nn.NormSpec{Kind: nn.NormBatchNorm}.New("attn.norm", dim)
		s := nn.NewSRA("attn", dim, heads, srRatio, true, norm)
		fill(s.Params(), 2)
		return layer{mech, func(x *tensor.Tensor) *tensor.Tensor { return s.Forward(x, g, g, nn.Eval) }}
	case "softmax":
		a := nn.NewAttention("attn", dim, heads, true)
		fill(a.Params(), 3)
		return layer{mech, a.Forward}
	}
	panic("unknown mechanism " + mech)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func main() {
	rounds := flag.Int("rounds", 5, "timed rounds (each times every mechanism at every size once)")
	threads := flag.Int("threads", 2, "worker threads")
	pngPath := flag.String("png", "", "write the log-log plot here")
	jsonPath := flag.String("json", "", "write the rows as JSON here")
	flag.Parse()
	if *rounds < 1 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "scaling: -rounds and -threads must be >= 1")
		os.Exit(1)
	}
	kernels.SetThreads(*threads)
	sides := []int{56, 112, 224, 336, 448, 672, 896}
	mechs := []string{"sla", "sra", "softmax"}
	type cell struct {
		l layer
		x *tensor.Tensor
		r *row
	}
	var cells []cell
	rng := rand.New(rand.NewPCG(9, 9))
	for _, m := range mechs {
		for _, s := range sides {
			if m == "softmax" && s > maxSoftmax {
				continue
			}
			g := s / 4
			x := tensor.New(1, g*g, dim)
			for i := range x.Data {
				x.Data[i] = float32(rng.NormFloat64())
			}
			l := build(m, g)
			l.fwd(x) // warm-up: buffers grow once
			cells = append(cells, cell{l, x, &row{Mechanism: m, Side: s, Tokens: g * g}})
		}
	}
	for r := 0; r < *rounds; r++ {
		for _, c := range cells {
			t0 := time.Now()
			c.l.fwd(c.x)
			c.r.Rounds = append(c.r.Rounds, time.Since(t0).Seconds()*1e3)
		}
	}
	rows := make([]row, len(cells))
	base := map[string]float64{}
	for i, c := range cells {
		r := *c.r
		r.Ms = median(r.Rounds)
		r.NsPerTok = r.Ms * 1e6 / float64(r.Tokens)
		if _, ok := base[r.Mechanism]; !ok {
			base[r.Mechanism] = r.NsPerTok
		}
		r.Rel = r.NsPerTok / base[r.Mechanism]
		rows[i] = r
	}
	fmt.Printf("PVT stage 1 attention (width %d, %d head), %d threads, %d rounds, medians; %s\n\n",
		dim, heads, *threads, *rounds, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Println("| input | tokens | mechanism | ms | ns / token | per token vs 196 tokens |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, s := range sides {
		for _, r := range rows {
			if r.Side == s {
				fmt.Printf("| %dx%d | %d | %s | %.3f | %.1f | %.2f |\n", s, s, r.Tokens, r.Mechanism, r.Ms, r.NsPerTok, r.Rel)
			}
		}
	}
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "scaling:", err)
			os.Exit(1)
		}
	}
	if *pngPath != "" {
		if err := draw(*pngPath, rows, mechs); err != nil {
			fmt.Fprintln(os.Stderr, "scaling:", err)
			os.Exit(1)
		}
	}
}

// draw plots time against tokens on log-log axes, one line per mechanism.
func draw(path string, rows []row, mechs []string) error {
	p := plot.New()
	p.Title.Text = "PVT stage-1 attention (width 64), forward time vs tokens"
	p.X.Label.Text = "tokens (input side / 4, squared)"
	p.Y.Label.Text = "ms (median)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	var lines []any
	for _, m := range mechs {
		var xy plotter.XYs
		for _, r := range rows {
			if r.Mechanism == m {
				xy = append(xy, plotter.XY{X: float64(r.Tokens), Y: r.Ms})
			}
		}
		lines = append(lines, m, xy)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p.Save(7*vg.Inch, 5*vg.Inch, path)
}
