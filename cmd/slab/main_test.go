package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for slab: with SLAB_TEST_MAIN=1
// it runs main on its arguments, so the flag, guard and signal tests see
// real exit codes, real stderr and a real working directory without
// building a binary. It lives in a file of its own because every test
// that starts os.Args[0] as slab depends on it: without it such a child
// would run the whole test suite again, which starts children again.
// SLAB_TEST_CHILD marks every process started that way, so a child that
// reaches the suite anyway stops there instead of recursing.
func TestMain(m *testing.M) {
	if os.Getenv("SLAB_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	if os.Getenv(childMark) != "" && os.Getenv("SLAB_CHILD_ARGS") == "" {
		fmt.Fprintln(os.Stderr, "slab test child reached the test suite: refusing to recurse")
		os.Exit(3)
	}
	os.Setenv(childMark, "1") // inherited by every child the tests start
	os.Exit(m.Run())
}

// childMark is set in the environment of every process a test starts.
const childMark = "SLAB_TEST_CHILD"
