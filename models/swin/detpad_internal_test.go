package swin

import (
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

// TestDetMixerPadding: a detection-layout mixer on a 6x5 map with window
// 4 and shift 2 equals the official detection block's steps written out
// by hand here (zero-pad right/bottom to 8x8, roll by -2, window
// partition, window attention with the 8x8 shift mask, reverse, roll by
// +2, crop), and on a second, larger map it re-lays itself out.
func TestDetMixerPadding(t *testing.T) {
	const c, heads, ws, shift, b = 8, 2, 4, 2, 2
	att := nn.NewWindowAttention("attn", c, heads, ws, true)
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range att.Params() {
		for i := range p.W.Data {
			p.W.Data[i] = float32(0.3 * r.NormFloat64())
		}
	}
	mx := newWindowMixer(4, 4, ws, shift, true, att, nil, att.QKV)
	for _, g := range []backbone.Grid{{H: 6, W: 5}, {H: 9, W: 12}} {
		x := tensor.New(b, g.H*g.W, c)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		got := mx.Forward(x, g).Clone()

		hp, wp := (g.H+ws-1)/ws*ws, (g.W+ws-1)/ws*ws
		nwx, nw := wp/ws, (hp/ws)*(wp/ws)
		win := tensor.New(b*nw, ws*ws, c)
		// window (wy, wx), token (ty, tx) reads the padded map at
		// ((wy*ws+ty+shift) mod hp, (wx*ws+tx+shift) mod wp): roll by -shift
		src := func(bi, w, t int) (int, bool) {
			y := ((w/nwx)*ws + t/ws + shift) % hp
			xx := ((w%nwx)*ws + t%ws + shift) % wp
			return (bi*g.H+y)*g.W + xx, y < g.H && xx < g.W
		}
		for bi := range b {
			for w := range nw {
				for t := range ws * ws {
					if q, ok := src(bi, w, t); ok {
						copy(win.Data[((bi*nw+w)*ws*ws+t)*c:][:c], x.Data[q*c:(q+1)*c])
					}
				}
			}
		}
		out := att.Forward(win, nn.ShiftMask(hp, wp, ws, shift))
		want := tensor.New(b, g.H*g.W, c)
		for bi := range b {
			for w := range nw {
				for t := range ws * ws {
					if q, ok := src(bi, w, t); ok {
						copy(want.Data[q*c:(q+1)*c], out.Data[((bi*nw+w)*ws*ws+t)*c:][:c])
					}
				}
			}
		}
		d := reftest.CloseT(t, "padded mixer vs the official steps", got, want, reftest.Tol{Abs: 1e-6})
		t.Logf("map %dx%d padded to %dx%d: max abs diff %.2g (values up to %.2g)", g.H, g.W, hp, wp, d.MaxAbs, d.Scale)
	}
}
