package kernels

// packTask packs the A panels [0, npa) of the current row block (only the
// partial last panel when A is read in place), then, as task numbers npa
// and up, groups of B panels of the current k slice.
type packTask struct {
	kr             *ukernel
	transA, transB bool
	direct         bool // full A panels are read in place, not packed
	bInPlace       bool // full B panels are read in place, not packed
	a, b           []float32
	lda, ldb       int
	alpha          float32
	apack, bpack   []float32
	ic, mc, npa    int
	pc, kc, jc, nc int
	npb, bgroups   int // B panels and the groups they are packed in
	packB          bool
}

// tasks is the size of the parallel range for the current block.
func (t *packTask) tasks() int {
	n := t.npa
	if t.packB {
		if !t.bInPlace {
			n += t.bgroups
		} else if t.nc%t.kr.nr != 0 {
			n++ // the partial last panel
		}
	}
	return n
}

func (t *packTask) run(lo, hi int) {
	mr, nr := t.kr.mr, t.kr.nr
	for i := lo; i < hi; i++ {
		if i < t.npa {
			rows := min(mr, t.mc-i*mr)
			if t.direct && rows == mr {
				continue
			}
			dst := t.apack // with direct A, the only packed panel
			if !t.direct {
				dst = t.apack[i*mr*t.kc:]
			}
			packA(mr, t.transA, t.a, t.lda, t.ic+i*mr, rows, t.pc, t.kc, t.alpha, dst)
			continue
		}
		g := i - t.npa
		jp0, jp1 := g*t.npb/t.bgroups, (g+1)*t.npb/t.bgroups
		if t.bInPlace {
			jp0, jp1 = t.npb-1, t.npb
		}
		if t.transB {
			for jp := jp0; jp < jp1; jp++ {
				packBT(t.kr, t.b, t.ldb, t.pc, t.kc, t.jc+jp*nr, min(nr, t.nc-jp*nr), t.bpack[jp*nr*t.kc:])
			}
		} else {
			packBN(nr, t.b, t.ldb, t.pc, t.kc, t.jc, t.nc, jp0, jp1, t.bpack)
		}
	}
}

// packPanels packs B panels [jp0, jp1) of the current k slice (with B read
// in place, only the partial last panel).
func (t *packTask) packPanels(jp0, jp1 int) {
	nr := t.kr.nr
	if t.bInPlace {
		if t.nc%nr == 0 || jp1 < t.npb {
			return
		}
		jp0 = t.npb - 1
	}
	if t.transB {
		for jp := jp0; jp < jp1; jp++ {
			packBT(t.kr, t.b, t.ldb, t.pc, t.kc, t.jc+jp*nr, min(nr, t.nc-jp*nr), t.bpack[jp*nr*t.kc:])
		}
	} else {
		packBN(nr, t.b, t.ldb, t.pc, t.kc, t.jc, t.nc, jp0, jp1, t.bpack)
	}
}

// packA packs rows [i0, i0+rows) and k range [p0, p0+kc) of alpha*op(A)
// into an mr-tall panel: dst[p*mr+i], zero rows past the edge.
func packA(mr int, transA bool, a []float32, lda, i0, rows, p0, kc int, alpha float32, dst []float32) {
	dst = dst[:mr*kc]
	if transA {
		// op(A)[i][p] = a[p*lda+i]: each k step is a contiguous run.
		for p := 0; p < kc; p++ {
			src := a[(p0+p)*lda+i0 : (p0+p)*lda+i0+rows]
			d := dst[p*mr : p*mr+mr]
			if alpha == 1 && rows == 12 && mr == 12 {
				*(*[12]float32)(d) = *(*[12]float32)(src)
			} else if alpha == 1 {
				copy(d, src)
			} else {
				for i, v := range src {
					d[i] = alpha * v
				}
			}
			clear(d[rows:])
		}
		return
	}
	for i := 0; i < rows; i++ {
		src := a[(i0+i)*lda+p0 : (i0+i)*lda+p0+kc]
		if alpha == 1 {
			for p, v := range src {
				dst[p*mr+i] = v
			}
		} else {
			for p, v := range src {
				dst[p*mr+i] = alpha * v
			}
		}
	}
	for i := rows; i < mr; i++ {
		for p := 0; p < kc; p++ {
			dst[p*mr+i] = 0
		}
	}
}

// packBN packs B panels [jp0, jp1) of the block (columns j0.. of width
// nc) of a non-transposed B: dst[jp*nr*kc + p*nr + j]. The k loop is outer
// so that each row of B is read as one contiguous run across the panels,
// instead of panel by panel with a page-sized stride.
func packBN(nr int, b []float32, ldb, p0, kc, j0, nc, jp0, jp1 int, dst []float32) {
	for p := 0; p < kc; p++ {
		row := b[(p0+p)*ldb+j0 : (p0+p)*ldb+j0+nc]
		for jp := jp0; jp < jp1; jp++ {
			d := dst[jp*nr*kc+p*nr : jp*nr*kc+p*nr+nr]
			cols := min(nr, nc-jp*nr)
			src := row[jp*nr : jp*nr+cols]
			// Fixed-size copies compile to inline vector moves; a
			// memmove call per 128 bytes cost as much as the copy.
			switch {
			case cols == 32 && nr == 32:
				*(*[32]float32)(d) = *(*[32]float32)(src)
			case cols == 16 && nr == 16:
				*(*[16]float32)(d) = *(*[16]float32)(src)
			default:
				copy(d, src)
				clear(d[cols:])
			}
		}
	}
}

// packBT packs columns [j0, j0+cols) and k range [p0, p0+kc) of a
// transposed B (B stored n x k, rows contiguous in k) into an nr-wide
// panel dst[p*nr+j], zero columns past the edge. Blocks of 16 columns x 16
// k steps go through the register transpose when the CPU has it.
func packBT(kr *ukernel, b []float32, ldb, p0, kc, j0, cols int, dst []float32) {
	nr := kr.nr
	dst = dst[:nr*kc]
	k16 := 0
	j16 := 0
	if kr.transpose16 {
		k16 = kc &^ 15
		j16 = cols &^ 15
		if k16 > 0 {
			for j := 0; j < j16; j += 16 {
				transpose16(k16, &b[(j0+j)*ldb+p0], ldb, &dst[j], nr)
			}
		}
	}
	for j := 0; j < cols; j++ {
		src := b[(j0+j)*ldb+p0 : (j0+j)*ldb+p0+kc]
		pStart := 0
		if j < j16 {
			pStart = k16
		}
		for p := pStart; p < kc; p++ {
			dst[p*nr+j] = src[p]
		}
	}
	for j := cols; j < nr; j++ {
		for p := 0; p < kc; p++ {
			dst[p*nr+j] = 0
		}
	}
}
