//go:build !linux

package kernels

import "unsafe"

// adviseHuge does nothing off Linux (see quant_huge_linux.go).
func adviseHuge(unsafe.Pointer, int) {}
