package kv

import (
	"errors"
	"testing"
)

func TestSetRejectsEmptyKey(t *testing.T) {
	if err := New().Set("", "x"); !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("Set(\"\") = %v, want ErrEmptyKey", err)
	}
}

func TestLen(t *testing.T) {
	s := New()
	_ = s.Set("a", "1")
	_ = s.Set("b", "2")
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
}
