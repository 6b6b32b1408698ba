package data

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register the decoders image.Decode uses
	_ "image/png"
	"math"
	"os"
)

// ImageNetMean and ImageNetStd are the per-channel RGB statistics every
// ImageNet model (timm's IMAGENET_DEFAULT_MEAN/STD) normalises with.
var (
	ImageNetMean = []float32{0.485, 0.456, 0.406}
	ImageNetStd  = []float32{0.229, 0.224, 0.225}
)

// Preprocess is an evaluation transform: resize so the shorter side is
// Resize (bicubic, antialiased, bit-exact with PIL's 8-bit resampler that
// torchvision uses on PIL images), crop the centre Crop x Crop, scale to
// [0,1] and normalise per channel. Gray converts to one luminance channel
// first (PIL's "L" conversion), for single-channel models.
type Preprocess struct {
	Resize, Crop int
	Mean, Std    []float32
	Gray         bool
}

// ImageNetEval is DeiT's evaluation transform for size x size inputs:
// Resize(int(size/0.875)) bicubic (256 for 224), CenterCrop(size),
// ToTensor, Normalize(ImageNetMean, ImageNetStd).
func ImageNetEval(size int) Preprocess {
	return Preprocess{Resize: int(float64(size) / 0.875), Crop: size, Mean: ImageNetMean, Std: ImageNetStd}
}

// Channels is the number of channels the transform produces.
func (p Preprocess) Channels() int {
	if p.Gray {
		return 1
	}
	return 3
}

// LoadImage decodes a JPEG or PNG file.
func LoadImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("data: %s is a directory, not an image file", path)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("data: %s: cannot decode as JPEG or PNG: %w", path, err)
	}
	return img, nil
}

// Apply transforms img into dst, which must hold Channels()*Crop*Crop
// values (CHW).
func (p Preprocess) Apply(img image.Image, dst []float32) error {
	c := p.Channels()
	if p.Resize < p.Crop || p.Crop <= 0 {
		return fmt.Errorf("data: resize %d smaller than crop %d", p.Resize, p.Crop)
	}
	if len(p.Mean) < c || len(p.Std) < c {
		return fmt.Errorf("data: %d channels need %d means and stds", c, c)
	}
	if len(dst) != c*p.Crop*p.Crop {
		return fmt.Errorf("data: output holds %d values, want %d", len(dst), c*p.Crop*p.Crop)
	}
	crop, err := p.Crop8(img)
	if err != nil {
		return err
	}
	n := p.Crop * p.Crop
	for ch := 0; ch < c; ch++ {
		var lut [256]float32
		for v := range lut {
			lut[v] = (float32(v)/255 - p.Mean[ch]) / p.Std[ch]
		}
		o := dst[ch*n : (ch+1)*n]
		for i := range o {
			o[i] = lut[crop[i*c+ch]]
		}
	}
	return nil
}

// Crop8 returns the resized, centre-cropped image as interleaved 8-bit
// pixels (Crop*Crop*Channels(), HWC): the PIL image torchvision would hand
// to ToTensor.
func (p Preprocess) Crop8(img image.Image) ([]uint8, error) {
	w, h, pix := RGB8(img)
	c := 3
	if p.Gray {
		pix, c = toLuma(pix), 1
	}
	if w == 0 || h == 0 {
		return nil, fmt.Errorf("data: empty image")
	}
	// torchvision's Resize(int): the shorter side becomes Resize and the
	// longer int(Resize*long/short), truncated.
	nw, nh := p.Resize, p.Resize
	if w <= h {
		nh = int(float64(p.Resize) * float64(h) / float64(w))
	} else {
		nw = int(float64(p.Resize) * float64(w) / float64(h))
	}
	r := ResizeBicubic(pix, w, h, c, nw, nh)
	// CenterCrop rounds the offsets with Python's round (half to even).
	top := int(math.RoundToEven(float64(nh-p.Crop) / 2))
	left := int(math.RoundToEven(float64(nw-p.Crop) / 2))
	out := make([]uint8, p.Crop*p.Crop*c)
	for y := 0; y < p.Crop; y++ {
		copy(out[y*p.Crop*c:(y+1)*p.Crop*c], r[((top+y)*nw+left)*c:((top+y)*nw+left+p.Crop)*c])
	}
	return out, nil
}

// RGB8 converts any decoded image to interleaved 8-bit RGB the way PIL's
// convert("RGB") does: alpha is dropped, not composited, and palette and
// gray images are expanded.
func RGB8(img image.Image) (w, h int, pix []uint8) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	pix = make([]uint8, w*h*3)
	switch m := img.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				copy(pix[(y*w+x)*3:(y*w+x)*3+3], row[x*4:x*4+3])
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := m.Pix[y*m.Stride+x]
				pix[(y*w+x)*3], pix[(y*w+x)*3+1], pix[(y*w+x)*3+2] = v, v, v
			}
		}
	case *image.YCbCr:
		if ycbcrLibjpeg(m, pix) {
			break
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := m.YCbCrAt(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				pix[(y*w+x)*3], pix[(y*w+x)*3+1], pix[(y*w+x)*3+2] = r, g, bb
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				pix[(y*w+x)*3], pix[(y*w+x)*3+1], pix[(y*w+x)*3+2] = c.R, c.G, c.B
			}
		}
	}
	return w, h, pix
}

// ycbcrLibjpeg converts a decoded JPEG the way libjpeg (behind PIL) does
// by default: chroma subsampled 2x horizontally (4:2:2) or 2x both ways
// (4:2:0) is upsampled with libjpeg's "fancy" triangular filter rather than
// repeated, and YCbCr -> RGB uses libjpeg's 16-bit fixed-point tables. It
// reports false for layouts it leaves to the generic path (4:4:4 needs no
// upsampling; the rarer ratios keep Go's nearest-sample upsampling).
func ycbcrLibjpeg(m *image.YCbCr, pix []uint8) bool {
	vsub := 1
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio420:
		vsub = 2
	case image.YCbCrSubsampleRatio422:
	default:
		return false
	}
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	if b.Min.X != 0 || b.Min.Y != 0 || w < 4 || h < 4 {
		return false
	}
	cw := (w + 1) / 2
	ch := (h + vsub - 1) / vsub
	cb, cr := make([]uint8, w*h), make([]uint8, w*h)
	upsampleFancy(cb, m.Cb, m.CStride, cw, ch, w, h, vsub)
	upsampleFancy(cr, m.Cr, m.CStride, cw, ch, w, h, vsub)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			yy := int32(m.Y[y*m.YStride+x])
			cbv, crv := int32(cb[y*w+x])-128, int32(cr[y*w+x])-128
			const half = 1 << 15
			r := yy + (91881*crv+half)>>16            // FIX(1.40200)
			g := yy + (-22554*cbv+half-46802*crv)>>16 // FIX(0.34414), FIX(0.71414)
			bl := yy + (116130*cbv+half)>>16          // FIX(1.77200)
			o := pix[(y*w+x)*3:]
			o[0], o[1], o[2] = clamp8(r), clamp8(g), clamp8(bl)
		}
	}
	return true
}

func clamp8(v int32) uint8 { return uint8(min(max(v, 0), 255)) }

// upsampleFancy doubles a chroma plane horizontally (and vertically when
// vsub is 2) with libjpeg's h2v1/h2v2 fancy upsampling, including its
// alternating rounding biases; edge rows and columns are replicated as
// libjpeg's context rows are.
func upsampleFancy(dst, src []uint8, stride, cw, ch, w, h, vsub int) {
	row := make([]int32, cw) // vertically blended input row (x4 for h2v2)
	out := make([]uint8, 2*cw)
	for y := 0; y < h; y++ {
		in0 := y / vsub
		if vsub == 2 {
			// The nearer chroma row weighs 3, the next nearer 1.
			in1 := in0 - 1
			if y%2 == 1 {
				in1 = in0 + 1
			}
			in1 = min(max(in1, 0), ch-1)
			for x := 0; x < cw; x++ {
				row[x] = 3*int32(src[in0*stride+x]) + int32(src[in1*stride+x])
			}
			out[0] = uint8((row[0]*4 + 8) >> 4)
			out[1] = uint8((row[0]*3 + row[1] + 7) >> 4)
			for x := 1; x < cw-1; x++ {
				out[2*x] = uint8((row[x]*3 + row[x-1] + 8) >> 4)
				out[2*x+1] = uint8((row[x]*3 + row[x+1] + 7) >> 4)
			}
			l := cw - 1
			out[2*l] = uint8((row[l]*3 + row[l-1] + 8) >> 4)
			out[2*l+1] = uint8((row[l]*4 + 7) >> 4)
		} else {
			s := src[in0*stride:]
			out[0] = s[0]
			out[1] = uint8((int32(s[0])*3 + int32(s[1]) + 2) >> 2)
			for x := 1; x < cw-1; x++ {
				v := int32(s[x]) * 3
				out[2*x] = uint8((v + int32(s[x-1]) + 1) >> 2)
				out[2*x+1] = uint8((v + int32(s[x+1]) + 2) >> 2)
			}
			l := cw - 1
			out[2*l] = uint8((int32(s[l])*3 + int32(s[l-1]) + 1) >> 2)
			out[2*l+1] = s[l]
		}
		copy(dst[y*w:(y+1)*w], out[:w])
	}
}

// toLuma is PIL's RGB -> L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
func toLuma(rgb []uint8) []uint8 {
	out := make([]uint8, len(rgb)/3)
	for i := range out {
		out[i] = uint8((19595*uint32(rgb[3*i]) + 38470*uint32(rgb[3*i+1]) + 7471*uint32(rgb[3*i+2]) + 0x8000) >> 16)
	}
	return out
}

// resampleBits is PIL's fixed-point precision for 8-bit resampling.
const resampleBits = 32 - 8 - 2

// bicubic is PIL's bicubic kernel (a = -0.5), support 2.
func bicubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// resampleCoeffs computes, for each output position, the first input index,
// the tap count and the fixed-point weights, as PIL's precompute_coeffs and
// normalize_coeffs_8bpc do: when shrinking, the kernel is stretched by the
// scale (the antialiasing), and weights are normalised to sum to one before
// rounding to 22-bit fixed point.
func resampleCoeffs(in, out int) (bounds []int, ksize int, k []int32) {
	scale := float64(in) / float64(out)
	fscale := max(scale, 1)
	support := 2 * fscale
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*out)
	k = make([]int32, out*ksize)
	w := make([]float64, ksize)
	for xx := 0; xx < out; xx++ {
		center := (float64(xx) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), in) - xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w[x] = bicubic((float64(x+xmin) - center + 0.5) / fscale)
			ww += w[x]
		}
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[xx*ksize+x] = int32(-0.5 + v*(1<<resampleBits))
			} else {
				k[xx*ksize+x] = int32(0.5 + v*(1<<resampleBits))
			}
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	return bounds, ksize, k
}

func clip8(v int32) uint8 {
	v >>= resampleBits
	return uint8(min(max(v, 0), 255))
}

// ResizeBicubic resizes interleaved 8-bit pixels (c channels) from w x h to
// ow x oh with PIL's two-pass algorithm (horizontal pass into an 8-bit
// intermediate covering only the rows the vertical pass reads, then the
// vertical pass), reproducing PIL's Image.resize(..., BICUBIC) exactly.
func ResizeBicubic(src []uint8, w, h, c, ow, oh int) []uint8 {
	hb, hk, hw := resampleCoeffs(w, ow)
	vb, vk, vw := resampleCoeffs(h, oh)
	// PIL skips a pass whose size does not change.
	tmp, th, first := src, h, 0
	if ow != w {
		first = vb[0]
		last := vb[2*oh-2] + vb[2*oh-1]
		if oh == h {
			first, last = 0, h
		}
		th = last - first
		tmp = make([]uint8, ow*th*c)
		for y := 0; y < th; y++ {
			in := src[(y+first)*w*c:]
			for xx := 0; xx < ow; xx++ {
				xmin, n := hb[2*xx], hb[2*xx+1]
				k := hw[xx*hk : xx*hk+n]
				for ch := 0; ch < c; ch++ {
					s := int32(1 << (resampleBits - 1))
					for x, kv := range k {
						s += int32(in[(x+xmin)*c+ch]) * kv
					}
					tmp[(y*ow+xx)*c+ch] = clip8(s)
				}
			}
		}
	}
	if oh == h {
		return tmp
	}
	tw := ow
	out := make([]uint8, ow*oh*c)
	for yy := 0; yy < oh; yy++ {
		ymin, n := vb[2*yy]-first, vb[2*yy+1]
		k := vw[yy*vk : yy*vk+n]
		for i := 0; i < tw*c; i++ {
			s := int32(1 << (resampleBits - 1))
			for y, kv := range k {
				s += int32(tmp[(y+ymin)*tw*c+i]) * kv
			}
			out[yy*tw*c+i] = clip8(s)
		}
	}
	return out
}
