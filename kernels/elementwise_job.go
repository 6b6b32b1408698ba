package kernels

import "sync"

// job carries one parallel kernel call's operands to the worker pool
// without a closure per call: a func literal capturing its arguments
// escapes into the pool and costs a heap allocation every call, which
// breaks the zero-allocation training step. Instead a kernel fills a pooled
// job's operand slots and names a non-capturing body (a static function
// value), and the job itself is the pool's runner (a pointer converts to
// the interface without allocating).
//
// Jobs go through the pool's parallelRun with split jobSplit rather than
// ParallelFor: the range is cut into jobSplit chunks per thread that
// threads claim as they finish, so on these shared machines a thread the
// OS preempts does not leave the caller waiting on a fixed half of the
// work. (Under a load average of ~10 on the 2 cores, neither static halves
// nor this beat one thread on a 197x192 LayerNorm; on an idle machine the
// split is what lets the second core help.)
type job struct {
	s    [12][]float32
	f    [4]float32
	f64  []float64 // 2 float64 per column of scratch (grow-only, kept with the pooled job)
	r, c int
	body func(j *job, lo, hi int)
	cols func(j *job, lo, hi int) // column-range body for colBody
}

// jobSplit is the number of chunks per thread a job is cut into.
const jobSplit = 4

var jobs = sync.Pool{New: func() any { return new(job) }}

// run makes job a runner of the worker pool.
func (j *job) run(lo, hi int) { j.body(j, lo, hi) }

// newJob takes a job from the pool with its body, sizes and operands set.
func newJob(body func(j *job, lo, hi int), rows, c int, s ...[]float32) *job {
	j := jobs.Get().(*job)
	j.body, j.r, j.c = body, rows, c
	copy(j.s[:], s)
	return j
}

// exec runs the job over [0,n) in chunks of at least grain and returns it
// to the pool (dropping its references to caller memory).
func (j *job) exec(n, grain int) {
	parallelRun(n, grain, jobSplit, j)
	j.release()
}

// release returns the job to the pool without its references to caller
// memory.
func (j *job) release() {
	j.s = [12][]float32{}
	j.body, j.cols = nil, nil
	jobs.Put(j)
}

// colBody maps a range of column blocks to a column range for j.cols.
func colBody(j *job, lo, hi int) { j.cols(j, lo*colBlock, min(hi*colBlock, j.c)) }

// runCols runs cols over column ranges of a rows x c matrix: split across
// threads by blocks of colBlock columns when the matrix is large, else
// inline over [0,c).
func runCols(cols func(j *job, lo, hi int), rows, c int, s ...[]float32) {
	j := newJob(colBody, rows, c, s...)
	j.cols = cols
	if cap(j.f64) < 2*c {
		j.f64 = make([]float64, 2*c)
	}
	j.f64 = j.f64[:2*c]
	if rows*c < parallelMin || c < 2*colBlock {
		cols(j, 0, c)
		j.release()
		return
	}
	// At least two blocks (128 bytes of each row) per chunk, so a chunk
	// still streams row segments the prefetcher follows.
	j.exec((c+colBlock-1)/colBlock, 2)
}
