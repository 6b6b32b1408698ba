package kernels

// Im2ColPatches unfolds non-overlapping p x p patches (convolution with
// kernel = stride = p, no padding) of one channel-major image [c, h, w]
// into rows of col: patch (gy, gx), in row-major patch order, becomes row
// gy*gw+gx holding c*p*p values ordered (channel, ky, kx), the order of a
// PyTorch conv weight [out, c, p, p]. A patch embedding is then one GEMM
// col·Wᵀ. Trailing rows/columns that do not fill a patch are dropped, as
// PyTorch does. Patch rows [gy0, gy1) are produced so callers can split
// the work.
func Im2ColPatches(col []float32, img []float32, c, h, w, p, gy0, gy1 int) {
	gw := w / p
	kdim := c * p * p
	for gy := gy0; gy < gy1; gy++ {
		for gx := 0; gx < gw; gx++ {
			row := col[(gy*gw+gx)*kdim : (gy*gw+gx+1)*kdim]
			o := 0
			for ch := 0; ch < c; ch++ {
				base := ch*h*w + gy*p*w + gx*p
				for ky := 0; ky < p; ky++ {
					copy(row[o:o+p], img[base+ky*w:base+ky*w+p])
					o += p
				}
			}
		}
	}
}
