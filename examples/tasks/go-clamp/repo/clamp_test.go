package mathx

import "testing"

func TestClampInRange(t *testing.T) {
	if got := Clamp(5, 0, 10); got != 5 {
		t.Fatalf("Clamp(5, 0, 10) = %d, want 5", got)
	}
}

func TestClampBelow(t *testing.T) {
	if got := Clamp(-3, 0, 10); got != 0 {
		t.Fatalf("Clamp(-3, 0, 10) = %d, want 0", got)
	}
}

func TestLerp(t *testing.T) {
	if got := Lerp(0, 10, 0.5); got != 5 {
		t.Fatalf("Lerp(0, 10, 0.5) = %v, want 5", got)
	}
}
