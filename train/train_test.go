package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// toyModel is a PRepBN norm over the 16 pixels followed by a linear
// classifier: just enough of a real model to exercise every path of the
// trainer (params, int and float buffers, the schedule and lambda, BN
// re-calibration, drop-path seeding) without depending on a model family.
type toyModel struct {
	cfg     toyConfig
	norm    nn.Norm
	w, b    *nn.Param
	dpSeed  uint64
	x       *tensor.Tensor // normalised input
	dx      *tensor.Tensor
	logits  *tensor.Tensor
	in, out int
}

type toyConfig struct{ In, Out int }

func (c *toyConfig) Validate() error                { return nil }
func (c *toyConfig) Set(option, value string) error { return fmt.Errorf("no option %q", option) }
func (c *toyConfig) Get(option string) string       { return "" }
func (c *toyConfig) Summary() string                { return "toy" }
func (c *toyConfig) NormSpec() nn.NormSpec {
	return nn.NormSpec{Kind: nn.NormPRepBN, Eps: 1e-6, Step: 1}
}
func (c *toyConfig) ParamCount() int64              { return int64(c.Out*c.In + c.Out + 4*c.In + 1) }
func (c *toyConfig) FLOPs() int64                   { return int64(2 * c.In * c.Out) }
func (c *toyConfig) FLOPsByLayer() map[string]int64 { return map[string]int64{"linear": c.FLOPs()} }

func newToy(in, out int, seed uint64) *toyModel {
	m := &toyModel{in: in, out: out, cfg: toyConfig{in, out}}
	m.norm = m.cfg.NormSpec().New("norm", in)
	m.w = nn.NewParam("head.weight", false, out, in)
	m.b = nn.NewParam("head.bias", true, out)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range m.w.W.Data {
		m.w.W.Data[i] = float32(r.NormFloat64() * 0.1)
	}
	return m
}

func (m *toyModel) Family() string                    { return "toy" }
func (m *toyModel) Config() models.Config             { return &m.cfg }
func (m *toyModel) Norms() []nn.NormSlot              { return []nn.NormSlot{{Name: "norm", Norm: &m.norm}} }
func (m *toyModel) FoldSites() ([]nn.FoldSite, error) { return nil, fmt.Errorf("toy: no fold") }
func (m *toyModel) Folded()                           {}
func (m *toyModel) DropGrads()                        {}
func (m *toyModel) InputShape() (c, h, w int)         { return 1, 4, 4 }
func (m *toyModel) Classes() int                      { return m.out }

func (m *toyModel) Forward(x *tensor.Tensor, mode nn.Mode) (*tensor.Tensor, error) {
	bsz := x.Dim(0)
	xn := m.norm.Forward(&tensor.Tensor{Data: x.Data, Shape: []int{bsz, m.in}}, mode)
	m.x = xn
	y := tensor.Ensure(&m.logits, bsz, m.out)
	// A drop-path stand-in: the seed perturbs the logits so that a wrong
	// seed on resume would show up as a parameter difference.
	jit := float32(m.dpSeed%7) * 1e-3
	if !mode.Training() {
		jit = 0
	}
	for i := 0; i < bsz; i++ {
		for o := 0; o < m.out; o++ {
			s := m.b.W.Data[o] + jit
			for k := 0; k < m.in; k++ {
				s += m.w.W.Data[o*m.in+k] * xn.Data[i*m.in+k]
			}
			y.Data[i*m.out+o] = s
		}
	}
	return y, nil
}

func (m *toyModel) Backward(dy *tensor.Tensor) {
	bsz := dy.Dim(0)
	dx := tensor.EnsureZero(&m.dx, bsz, m.in)
	for i := 0; i < bsz; i++ {
		for o := 0; o < m.out; o++ {
			g := dy.Data[i*m.out+o]
			m.b.G.Data[o] += g
			for k := 0; k < m.in; k++ {
				m.w.G.Data[o*m.in+k] += g * m.x.Data[i*m.in+k]
				dx.Data[i*m.in+k] += g * m.w.W.Data[o*m.in+k]
			}
		}
	}
	m.norm.Backward(dx)
}

func (m *toyModel) Params() []*nn.Param {
	return append(append([]*nn.Param{}, m.norm.Params()...), m.w, m.b)
}
func (m *toyModel) Buffers() []*nn.Buffer       { return m.norm.Buffers() }
func (m *toyModel) SetDropPathSeed(seed uint64) { m.dpSeed = seed }

// toyData is n 1x4x4 images whose class is the brightest quadrant plus
// noise; augmentation flips horizontally with probability 1/2.
type toyData struct {
	img    [][]float32
	labels []int
}

func newToyData(n int, seed uint64) *toyData {
	r := rand.New(rand.NewPCG(seed, 2))
	d := &toyData{}
	for i := 0; i < n; i++ {
		c := r.IntN(4)
		im := make([]float32, 16)
		for p := range im {
			im[p] = float32(r.NormFloat64() * 0.3)
			if (p/4)/2*2+(p%4)/2 == c {
				im[p] += 1
			}
		}
		d.img = append(d.img, im)
		d.labels = append(d.labels, c)
	}
	return d
}

func (d *toyData) Len() int             { return len(d.img) }
func (d *toyData) Shape() (c, h, w int) { return 1, 4, 4 }
func (d *toyData) Batch(idx []int, augment bool, rng *rand.Rand, x []float32, labels []int) error {
	for j, i := range idx {
		dst := x[j*16 : (j+1)*16]
		copy(dst, d.img[i])
		labels[j] = d.labels[i]
		if augment && rng.IntN(2) == 1 {
			for r := 0; r < 4; r++ {
				row := dst[r*4 : r*4+4]
				row[0], row[3], row[1], row[2] = row[3], row[0], row[2], row[1]
			}
			// A flip moves the class to the mirrored quadrant.
			labels[j] ^= 1
		}
	}
	return nil
}

func toyTrainer(t *testing.T, seed uint64) *Trainer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Epochs, cfg.Batch, cfg.EvalBatch, cfg.LR, cfg.Seed = 3, 16, 32, 1e-2, seed
	tr, err := NewTrainer(cfg, newToy(16, 4, 7), newToyData(200, 1), newToyData(64, 3))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestScheduleValues(t *testing.T) {
	s := Schedule{BaseLR: 1e-3, WarmupLR: 1e-6, MinLR: 1e-5, WarmupSteps: 10, TotalSteps: 100}
	for _, c := range []struct {
		t    int64
		want float64
	}{
		{0, 1e-6},
		{5, 1e-6 + 5*(1e-3-1e-6)/10},
		{10, 1e-5 + 0.5*(1e-3-1e-5)*(1+math.Cos(math.Pi*10/100))},
		{50, 1e-5 + 0.5*(1e-3-1e-5)},
		{99, 1e-5 + 0.5*(1e-3-1e-5)*(1+math.Cos(math.Pi*99/100))},
		{100, 1e-5},
		{1000, 1e-5},
	} {
		if got := s.LR(c.t); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("LR(%d) = %.10g, want %.10g", c.t, got, c.want)
		}
	}
	// The trainer's defaults: T = 0.8 x all steps, one warm-up epoch.
	tr := toyTrainer(t, 1)
	if tr.ItersPerEpoch != 12 || tr.ScheduleT != int64(math.Round(0.8*36)) || tr.Sched.WarmupSteps != 12 || tr.Sched.TotalSteps != 36 {
		t.Errorf("iters %d T %d warmup %d total %d", tr.ItersPerEpoch, tr.ScheduleT, tr.Sched.WarmupSteps, tr.Sched.TotalSteps)
	}
	if l := models.Lambda(tr.Model); l != 1 {
		t.Errorf("lambda before training = %g, want 1", l)
	}
}

func TestAdamWHandComputed(t *testing.T) {
	w := nn.NewParam("w", false, 3)
	b := nn.NewParam("b", true, 3)
	copy(w.W.Data, []float32{1, -2, 0.5})
	copy(b.W.Data, []float32{1, -2, 0.5})
	o := NewAdamW([]*nn.Param{w, b}, 0.05)
	grads := [][]float64{{0.1, -0.2, 0.3}, {-0.05, 0.4, 0.0}}
	lrs := []float64{1e-2, 5e-3}
	// Float64 reference of torch.optim.AdamW.
	ref := func(decay bool) []float64 {
		p := []float64{1, -2, 0.5}
		m, v := make([]float64, 3), make([]float64, 3)
		for s, g := range grads {
			lr := lrs[s]
			for j := range p {
				if decay {
					p[j] *= 1 - lr*0.05
				}
				m[j] = 0.9*m[j] + 0.1*g[j]
				v[j] = 0.999*v[j] + 0.001*g[j]*g[j]
				bc1 := 1 - math.Pow(0.9, float64(s+1))
				bc2 := 1 - math.Pow(0.999, float64(s+1))
				p[j] -= lr / bc1 * m[j] / (math.Sqrt(v[j])/math.Sqrt(bc2) + 1e-8)
			}
		}
		return p
	}
	for s, g := range grads {
		for j := range g {
			w.G.Data[j], b.G.Data[j] = float32(g[j]), float32(g[j])
		}
		o.Step(lrs[s])
	}
	for _, c := range []struct {
		p     *nn.Param
		decay bool
	}{{w, true}, {b, false}} {
		want := ref(c.decay)
		for j := range want {
			d := math.Abs(float64(c.p.W.Data[j]) - want[j])
			t.Logf("%s[%d] = %.8f want %.8f (diff %.2g)", c.p.Name, j, c.p.W.Data[j], want[j], d)
			if d > 1e-6 {
				t.Errorf("%s[%d] = %.8f, want %.8f", c.p.Name, j, c.p.W.Data[j], want[j])
			}
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	p := nn.NewParam("p", false, 2)
	q := nn.NewParam("q", false, 1)
	for _, c := range []struct {
		max, norm, scale float64
	}{{0, 13, 1}, {100, 13, 1}, {6.5, 13, 6.5 / (13 + 1e-6)}} {
		copy(p.G.Data, []float32{3, 4})
		q.G.Data[0] = 12
		n := ClipGradNorm([]*nn.Param{p, q}, c.max)
		if n != c.norm {
			t.Errorf("max %g: norm %g, want %g", c.max, n, c.norm)
		}
		if got, want := float64(q.G.Data[0]), 12*c.scale; math.Abs(got-want) > 1e-5 {
			t.Errorf("max %g: clipped grad %g, want %g", c.max, got, want)
		}
	}
}

func paramsEqual(t *testing.T, a, b *Trainer) {
	t.Helper()
	for i, p := range a.Model.Params() {
		q := b.Model.Params()[i]
		for j := range p.W.Data {
			if p.W.Data[j] != q.W.Data[j] {
				t.Fatalf("%s[%d]: %v != %v", p.Name, j, p.W.Data[j], q.W.Data[j])
			}
		}
		for j := range a.Opt.M[i] {
			if a.Opt.M[i][j] != b.Opt.M[i][j] || a.Opt.V[i][j] != b.Opt.V[i][j] {
				t.Fatalf("adam moments of %s differ at %d", p.Name, j)
			}
		}
	}
	for i, buf := range a.Model.Buffers() {
		o := b.Model.Buffers()[i]
		if buf.I != nil && *buf.I != *o.I {
			t.Fatalf("buffer %s: %d != %d", buf.Name, *buf.I, *o.I)
		}
		if buf.F != nil {
			for j := range buf.F.Data {
				if buf.F.Data[j] != o.F.Data[j] {
					t.Fatalf("buffer %s[%d] differs", buf.Name, j)
				}
			}
		}
	}
}

func TestTrainingLearnsAndIsDeterministic(t *testing.T) {
	a, b := toyTrainer(t, 5), toyTrainer(t, 5)
	for _, tr := range []*Trainer{a, b} {
		if err := tr.Run(tr.TotalSteps()); err != nil {
			t.Fatal(err)
		}
		if err := tr.Recalibrate(); err != nil {
			t.Fatal(err)
		}
	}
	paramsEqual(t, a, b)
	last := a.Epochs[len(a.Epochs)-1]
	t.Logf("epochs %d, final test acc %.3f loss %.3f, lambda %.3f", len(a.Epochs), last.TestAcc, last.TestLoss, last.Lambda)
	if len(a.Epochs) != 3 || last.TestAcc < 0.8 {
		t.Errorf("toy problem not learned: %+v", last)
	}
	if last.Lambda != 0 || a.Steps[0].Lambda != 1 {
		t.Errorf("lambda first %g last %g, want 1 then 0", a.Steps[0].Lambda, last.Lambda)
	}
	c := toyTrainer(t, 6)
	if err := c.Run(5); err != nil {
		t.Fatal(err)
	}
	if c.Model.Params()[0].W.Data[0] == a.Model.Params()[0].W.Data[0] {
		t.Error("a different seed gave the same weights")
	}
}

func TestResumeIsExact(t *testing.T) {
	dir := t.TempDir()
	for _, split := range []int64{7, 12, 20} { // mid-epoch, epoch boundary, mid second epoch
		straight := toyTrainer(t, 9)
		if err := straight.Run(30); err != nil {
			t.Fatal(err)
		}
		first := toyTrainer(t, 9)
		if err := first.Run(split); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "ckpt.safetensors")
		if err := first.Save(path); err != nil {
			t.Fatal(err)
		}
		f, err := checkpoint.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		second := toyTrainer(t, 123) // wrong seed on purpose: the checkpoint must win
		cfg, err := TrainConfigOf(f, path)
		if err != nil {
			t.Fatal(err)
		}
		second.Cfg = cfg
		if err := second.Restore(f, path); err != nil {
			t.Fatal(err)
		}
		if err := second.Run(30); err != nil {
			t.Fatal(err)
		}
		paramsEqual(t, straight, second)
		if len(second.Epochs) != len(straight.Epochs) {
			t.Errorf("split %d: %d epoch records, want %d", split, len(second.Epochs), len(straight.Epochs))
		}
		t.Logf("split at %d: identical after 30 steps (lambda %.4f)", split, models.Lambda(second.Model))
	}
}

func TestCheckpointRoundTripAndDamage(t *testing.T) {
	dir := t.TempDir()
	tr := toyTrainer(t, 2)
	if err := tr.Run(3); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "w.safetensors")
	m := tr.Model
	wf, err := models.WeightsFile(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Write(path, wf); err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	fresh := newToy(16, 4, 99)
	if err := loadExact(f, path, fresh); err != nil {
		t.Fatal(err)
	}
	other := toyTrainer(t, 2)
	other.Model = fresh
	other.Opt = tr.Opt
	paramsEqual(t, tr, other)

	// Wrong model: a different head size and a missing tensor.
	small := newToy(16, 3, 1)
	if err := loadExact(f, path, small); err == nil || !strings.Contains(err.Error(), "head.weight") {
		t.Errorf("shape mismatch error = %v", err)
	}
	delete(f.Tensors, "norm.iter")
	if err := loadExact(f, path, fresh); err == nil || !strings.Contains(err.Error(), "norm.iter") {
		t.Errorf("missing tensor error = %v", err)
	}
	// A weights file is not a training checkpoint.
	if err := tr.Restore(f, path); err == nil || !strings.Contains(err.Error(), "not a slab training checkpoint") {
		t.Errorf("restore of weights file: %v", err)
	}

	// Damaged files: truncated, and garbage.
	ck := filepath.Join(dir, "ckpt.safetensors")
	if err := tr.Save(ck); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"truncated": raw[:len(raw)-10], "garbage": []byte("not a checkpoint at all")} {
		p := filepath.Join(dir, name+".safetensors")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := checkpoint.Read(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s checkpoint: error %v does not name %s", name, err, p)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// Damaged metadata.
	g, _ := checkpoint.Read(ck)
	g.Metadata["state"] = "{broken"
	if err := tr.Restore(g, ck); err == nil || !strings.Contains(err.Error(), ck) {
		t.Errorf("damaged state metadata: %v", err)
	}
}

func TestLog(t *testing.T) {
	dir := t.TempDir()
	tr := toyTrainer(t, 4)
	if err := tr.Run(tr.TotalSteps()); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "log.jsonl")
	if err := AppendLog(logPath, tr.Steps, tr.Epochs); err != nil {
		t.Fatal(err)
	}
	steps, epochs, err := ReadLog(logPath, 24)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 24 || len(epochs) != 2 || steps[23] != tr.Steps[23] || epochs[1] != tr.Epochs[1] {
		t.Errorf("log round trip: %d steps, %d epochs", len(steps), len(epochs))
	}
}
