package main

import (
	"strings"
	"testing"
)

// slab info takes the model as an argument: an unknown one is named as
// MODEL, never as a --model flag info does not have.
func TestInfoUnknownModel(t *testing.T) {
	_, err := runIn(t, "info", "nope")
	if err == nil || strings.Contains(err.Error(), "--model") || !strings.Contains(err.Error(), "MODEL nope") {
		t.Fatalf("info nope: %v", err)
	}
}
