package tensor

import (
	"strings"
	"testing"
)

func TestEnsureReusesStorage(t *testing.T) {
	var x *Tensor
	a := Ensure(&x, 4, 8)
	if a.Size() != 32 || a.Rows() != 4 || a.Cols() != 8 {
		t.Fatalf("Ensure(4,8) = %v size %d", a, a.Size())
	}
	a.Data[0] = 7
	b := Ensure(&x, 2, 8)
	if &b.Data[0] != &a.Data[0] || b.Data[0] != 7 || b.String() != "[2,8]" {
		t.Fatalf("shrinking Ensure did not reuse storage: %v", b)
	}
	if allocs := testing.AllocsPerRun(100, func() { Ensure(&x, 4, 8) }); allocs != 0 {
		t.Fatalf("steady-state Ensure allocates %.0f times", allocs)
	}
	c := EnsureZero(&x, 3, 3)
	for _, v := range c.Data {
		if v != 0 {
			t.Fatalf("EnsureZero left %g", v)
		}
	}
}

func TestViewAndErrors(t *testing.T) {
	x := New(2, 3, 4)
	v := x.View(6, 4)
	v.Data[5] = 1
	if x.Data[5] != 1 || x.Dim(-1) != 4 || x.Dim(0) != 2 {
		t.Fatal("view does not share storage or Dim is wrong")
	}
	if _, err := FromData(make([]float32, 5), 2, 3); err == nil || !strings.Contains(err.Error(), "[2 3]") {
		t.Fatalf("FromData size mismatch: err = %v", err)
	}
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "[2 3 4]") {
			t.Fatalf("bad View panic = %v, want one naming both shapes", r)
		}
	}()
	x.View(5, 5)
}

func TestCloneIsDeep(t *testing.T) {
	x := New(3)
	y := x.Clone()
	y.Data[0] = 1
	if x.Data[0] != 0 || !SameShape(x, y) || ShapeEq([]int{3}, []int{3, 1}) {
		t.Fatal("Clone shares storage or shape comparison is wrong")
	}
}
