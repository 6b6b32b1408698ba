package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The worker pool. ParallelFor used to start one goroutine per chunk; at
// batch 1 a ViT block runs dozens of small kernels whose useful work is tens
// of microseconds, so fork/join has to cost about a microsecond, not the
// ~5-20 us of goroutine creation plus a WaitGroup wake-up. Workers are
// therefore persistent: after a job they spin on the job word for a short
// while (the next kernel usually follows within microseconds) and only then
// park on a sync.Cond, so an idle process does not burn the shared cores.
//
// One job is in flight at a time. A ParallelFor issued while the pool is busy
// (a nested call from inside a chunk, or a second goroutine) runs inline on
// its caller: the cores are already occupied, so serial execution is both
// correct and the fastest thing to do, and it can never deadlock.
//
// The job word packs a generation number (high 32 bits) with the count of
// unclaimed chunks (low 32 bits). A worker claims a chunk with a CAS on the
// whole word, so a worker that wakes late cannot claim a chunk of a newer job
// with the parameters of an older one: the job's fields are read only after a
// successful claim, and a job cannot be replaced while one of its chunks is
// still unfinished.

// threads is the number of threads ParallelFor uses, caller included.
var threads = runtime.GOMAXPROCS(0)

// spinIters bounds how long an idle worker polls before parking (each
// iteration is one PAUSE-like spin, ~10-40 ns): tens of microseconds.
const spinIters = 2000

// runner is the work of one job. GEMM passes pointers to its pooled task
// structs, so a steady-state GEMM allocates nothing; ParallelFor wraps the
// caller's closure as a funcRunner (a func value converts to an interface
// without allocating).
type runner interface{ run(lo, hi int) }

type funcRunner func(lo, hi int)

func (f funcRunner) run(lo, hi int) { f(lo, hi) }

type poolJob struct {
	r       runner
	n       int
	chunk   int
	nchunks int
}

var pool struct {
	busy    atomic.Bool
	word    atomic.Uint64 // generation<<32 | unclaimed chunks
	gen     uint32        // written only by the job owner
	job     poolJob       // written only by the job owner, between jobs
	done    atomic.Int64  // chunks finished in the current job
	panicV  atomic.Pointer[any]
	mu      sync.Mutex
	cond    *sync.Cond
	sleep   atomic.Int32 // parked workers
	workers int          // started workers (excludes callers)
	startMu sync.Mutex
}

func init() { pool.cond = sync.NewCond(&pool.mu) }

// SetThreads sets how many threads kernels use (n < 1 means GOMAXPROCS).
// Workers are started lazily and never stopped; lowering the count just
// leaves some of them parked. Call it between kernels, not while one runs.
func SetThreads(n int) {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	threads = n
}

// Threads reports how many threads kernels use.
func Threads() int { return threads }

// ensureWorkers starts workers until threads-1 exist.
func ensureWorkers(t int) {
	if pool.workers >= t-1 {
		return
	}
	pool.startMu.Lock()
	for pool.workers < t-1 {
		pool.workers++
		go worker()
	}
	pool.startMu.Unlock()
}

// ParallelFor splits [0, n) into at most Threads() contiguous chunks of at
// least grain items and runs fn on each, the calling goroutine taking part.
// It returns when all chunks are done. A panic in any chunk is re-raised on
// the caller after every chunk has finished, so callers can recover it.
// Nested or concurrent calls run inline on their caller (see the pool notes).
func ParallelFor(n, grain int, fn func(lo, hi int)) {
	parallelRun(n, grain, 1, funcRunner(fn))
}

// parallelRun is ParallelFor for internal tasks; split > 1 cuts the range
// into up to split*threads chunks that threads claim as they finish, so a
// thread that the OS preempts (the machines are shared) or that drew
// slower work does not hold up the others.
func parallelRun(n, grain, split int, r runner) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	t := threads
	if m := (n + grain - 1) / grain; m < t {
		t = m
	}
	if t <= 1 || !pool.busy.CompareAndSwap(false, true) {
		r.run(0, n)
		return
	}
	ensureWorkers(t)
	nc := t
	if split > 1 {
		nc = min(t*split, (n+grain-1)/grain)
	}
	chunk := (n + nc - 1) / nc
	nchunks := (n + chunk - 1) / chunk
	pool.job = poolJob{r: r, n: n, chunk: chunk, nchunks: nchunks}
	pool.done.Store(0)
	pool.gen++
	pool.word.Store(uint64(pool.gen)<<32 | uint64(nchunks))
	if pool.sleep.Load() > 0 {
		pool.mu.Lock()
		pool.cond.Broadcast()
		pool.mu.Unlock()
	}
	runChunks()
	for i := 0; pool.done.Load() < int64(nchunks); i++ {
		if i < spinIters {
			spinPause()
		} else {
			runtime.Gosched()
		}
	}
	pool.job.r = nil // do not keep the closure alive
	p := pool.panicV.Swap(nil)
	pool.busy.Store(false)
	if p != nil {
		panic(*p)
	}
}

// runChunks claims and runs chunks of the current job until none are left.
func runChunks() {
	for {
		w := pool.word.Load()
		left := uint32(w)
		if left == 0 {
			return
		}
		if !pool.word.CompareAndSwap(w, w-1) {
			continue
		}
		j := &pool.job
		c := j.nchunks - int(left)
		lo := c * j.chunk
		runOne(j.r, lo, min(lo+j.chunk, j.n))
		pool.done.Add(1)
	}
}

// runOne runs one chunk, recording (not propagating) a panic so that a
// worker goroutine never takes the process down.
func runOne(r runner, lo, hi int) {
	defer func() {
		if r := recover(); r != nil {
			recordPanic(r)
		}
	}()
	r.run(lo, hi)
}

func worker() {
	for {
		runChunks()
		// Spin briefly, then park until a job with unclaimed chunks appears.
		found := false
		for i := 0; i < spinIters; i++ {
			if uint32(pool.word.Load()) != 0 {
				found = true
				break
			}
			spinPause()
		}
		if found {
			continue
		}
		pool.mu.Lock()
		pool.sleep.Add(1)
		for uint32(pool.word.Load()) == 0 {
			pool.cond.Wait()
		}
		pool.sleep.Add(-1)
		pool.mu.Unlock()
	}
}

// recordPanic keeps the first panic of a job. Separate from the deferred
// function so that the common, panic-free path allocates nothing.
//
//go:noinline
func recordPanic(r any) { pool.panicV.CompareAndSwap(nil, &r) }
