package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// patchRef is the strided conv in float64 from the definition.
func patchRef(B, C, H, W, D, p int, img, w, bias []float64) []float64 {
	gh, gw := H/p, W/p
	out := make([]float64, B*gh*gw*D)
	for b := 0; b < B; b++ {
		for gy := 0; gy < gh; gy++ {
			for gx := 0; gx < gw; gx++ {
				for o := 0; o < D; o++ {
					s := bias[o]
					for c := 0; c < C; c++ {
						for ky := 0; ky < p; ky++ {
							for kx := 0; kx < p; kx++ {
								s += w[((o*C+c)*p+ky)*p+kx] * img[((b*C+c)*H+gy*p+ky)*W+gx*p+kx]
							}
						}
					}
					out[((b*gh+gy)*gw+gx)*D+o] = s
				}
			}
		}
	}
	return out
}

func TestPatchEmbed(t *testing.T) {
	for i, sh := range []struct{ B, C, H, W, D, p int }{
		{1, 1, 2, 2, 3, 2}, {2, 3, 8, 8, 5, 4}, {1, 3, 9, 7, 4, 3}, {2, 2, 5, 5, 6, 1}, {1, 3, 32, 32, 8, 16},
	} {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 5))
			pe := NewPatchEmbed("patch_embed.proj", sh.C, sh.D, sh.p)
			img := attnRound(attnRand(rng, sh.B*sh.C*sh.H*sh.W, 0, 1))
			w := attnRound(attnRand(rng, len(pe.Weight.W.Data), 0, 0.2))
			bias := attnRound(attnRand(rng, sh.D, 0, 0.2))
			attnTo32(pe.Weight.W.Data, w)
			attnTo32(pe.Bias.W.Data, bias)
			x := tensor.New(sh.B, sh.C, sh.H, sh.W)
			attnTo32(x.Data, img)
			y := pe.Forward(x)
			n := (sh.H / sh.p) * (sh.W / sh.p)
			if !tensor.ShapeEq(y.Shape, []int{sh.B, n, sh.D}) {
				t.Fatalf("output shape %v, want [%d %d %d]", y.Shape, sh.B, n, sh.D)
			}
			assertClose(t, "forward", y.Data, patchRef(sh.B, sh.C, sh.H, sh.W, sh.D, sh.p, img, w, bias), 1e-5, 1e-5)
			R := attnRound(attnRand(rng, len(y.Data), 0, 1))
			dy := tensor.New(y.Shape...)
			attnTo32(dy.Data, R)
			if dx := pe.Backward(dy); dx != nil {
				t.Errorf("Backward returned %v, want nil", dx.Shape)
			}
			loss := func([]float64) float64 {
				o := patchRef(sh.B, sh.C, sh.H, sh.W, sh.D, sh.p, img, w, bias)
				l := 0.0
				for k := range o {
					l += o[k] * R[k]
				}
				return l
			}
			// Check at most 200 weights (the 16x16 case has 6144).
			idx := rng.Perm(len(w))[:min(len(w), 200)]
			gw := make([]float32, len(idx))
			ww := make([]float64, len(idx))
			for j, ix := range idx {
				gw[j] = pe.Weight.G.Data[ix]
				ww[j] = numGrad(loss, w[ix:ix+1], 1e-6)[0]
			}
			assertClose(t, "dweight", gw, ww, 1e-4, 1e-4)
			assertClose(t, "dbias", pe.Bias.G.Data, numGrad(loss, bias, 1e-6), 1e-4, 1e-4)
		})
	}
}

func TestPatchEmbedAllocs(t *testing.T) {
	if attnGemmAllocates() {
		t.Skip("kernels.Gemm allocates per call")
	}
	pe := NewPatchEmbed("patch_embed.proj", 3, 8, 4)
	x := tensor.New(2, 3, 16, 16)
	pe.Forward(x)
	dy := tensor.New(2, 16, 8)
	pe.Backward(dy)
	n := testing.AllocsPerRun(5, func() {
		pe.Forward(x)
		pe.Backward(dy)
	})
	t.Logf("PatchEmbed forward+backward: %.1f allocs/run", n)
	if n > 0 {
		t.Errorf("PatchEmbed steady state allocates %.1f times", n)
	}
}
