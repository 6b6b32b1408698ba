//go:build !linux

package checkpoint

// releaseBytes is a no-op where MADV_DONTNEED is not used: the buffer is
// freed with the File.
func releaseBytes(b []byte) {}
