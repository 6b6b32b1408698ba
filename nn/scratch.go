package nn

import (
	"runtime"
	"sync"
)

// scratchList hands out reusable float32 buffers to parallel tasks. All
// layers share one list, so a task's buffer is one that an earlier task
// (often of the same core) just released and is still in cache; a
// sync.Pool would do the same but drops its buffers at every garbage
// collection, and regrowing them costs page faults on the hot path.
type scratchList struct {
	mu   sync.Mutex
	list []*[]float32
}

// probScratch holds evaluation attention's per-task probability rows.
var probScratch scratchList

// get returns a spare buffer (grown by the caller as needed) or a new,
// empty one.
func (s *scratchList) get() *[]float32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.list); n > 0 {
		b := s.list[n-1]
		s.list = s.list[:n-1]
		return b
	}
	return new([]float32)
}

// put keeps b for a later get, unless as many are kept as tasks could run
// at once.
func (s *scratchList) put(b *[]float32) {
	s.mu.Lock()
	if len(s.list) < 2*runtime.GOMAXPROCS(0)+2 {
		s.list = append(s.list, b)
	}
	s.mu.Unlock()
}
