package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// IDX type codes (the third byte of the magic number).
const idxUbyte = 0x08

// maxIDXElems bounds what a header may declare (MNIST's training images
// are 47M bytes): a corrupt dimension must not turn into a huge allocation.
const maxIDXElems = 1 << 31

// ReadIDX reads an IDX file of unsigned bytes, gzip-compressed (detected
// by its magic) or raw, and returns its dimensions and data. wantDims, when
// positive, is the number of dimensions the caller expects (3 for images,
// 1 for labels). The data length must match the header exactly: trailing
// or missing bytes are errors naming the file.
func ReadIDX(path string, wantDims int) (dims []int, data []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	dims, data, err = decodeIDX(bufio.NewReaderSize(f, 1<<16), wantDims)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %s: %w", path, err)
	}
	return dims, data, nil
}

// ReadIDXBytes is ReadIDX on an in-memory image (for tests and fuzzing).
func ReadIDXBytes(b []byte, wantDims int) ([]int, []byte, error) {
	return decodeIDX(bufio.NewReader(bytes.NewReader(b)), wantDims)
}

// decodeIDX parses an IDX stream (gzip or raw) from r.
func decodeIDX(r *bufio.Reader, wantDims int) ([]int, []byte, error) {
	var src io.Reader = r
	if head, err := r.Peek(2); err == nil && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("bad gzip stream: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	var magic [4]byte
	if _, err := io.ReadFull(src, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("too short for an IDX file: %w", err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, nil, fmt.Errorf("bad IDX magic % x (not an IDX file)", magic)
	}
	if magic[2] != idxUbyte {
		return nil, nil, fmt.Errorf("IDX element type %#02x is not unsigned byte (0x08)", magic[2])
	}
	nd := int(magic[3])
	if wantDims > 0 && nd != wantDims {
		return nil, nil, fmt.Errorf("IDX file has %d dimensions, want %d", nd, wantDims)
	}
	if nd == 0 {
		return nil, nil, errors.New("IDX file has no dimensions")
	}
	hdr := make([]byte, 4*nd)
	if _, err := io.ReadFull(src, hdr); err != nil {
		return nil, nil, fmt.Errorf("truncated IDX header: %w", err)
	}
	dims := make([]int, nd)
	n := uint64(1)
	for i := range dims {
		d := uint64(binary.BigEndian.Uint32(hdr[4*i:]))
		n *= d
		if n > maxIDXElems {
			return nil, nil, fmt.Errorf("IDX dimensions declare more than %d elements", uint64(maxIDXElems))
		}
		dims[i] = int(d)
	}
	data := make([]byte, n)
	if got, err := io.ReadFull(src, data); err != nil {
		return nil, nil, fmt.Errorf("truncated: %d of the %d data bytes for dimensions %v (%v)", got, n, dims, err)
	}
	// Reading past the end also makes gzip verify its checksum.
	var extra [1]byte
	if k, err := io.ReadFull(src, extra[:]); k > 0 {
		return nil, nil, fmt.Errorf("trailing bytes after the %d data bytes for dimensions %v", n, dims)
	} else if err != io.EOF {
		return nil, nil, fmt.Errorf("after the data: %w", err)
	}
	return dims, data, nil
}
