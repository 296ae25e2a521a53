package kv

import (
	"errors"
	"strings"
	"testing"
)

func TestHiddenGetExisting(t *testing.T) {
	s := New()
	_ = s.Set("a", "1")
	_ = s.Set("empty", "")
	if v, err := s.Get("a"); v != "1" || err != nil {
		t.Fatalf("Get(a) = %q, %v; want \"1\", nil", v, err)
	}
	if v, err := s.Get("empty"); v != "" || err != nil {
		t.Fatalf("Get(empty) = %q, %v; want \"\", nil", v, err)
	}
}

func TestHiddenGetMissing(t *testing.T) {
	v, err := New().Get("nope")
	if v != "" || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(nope) = %q, %v; want \"\", ErrNotFound", v, err)
	}
	if !strings.Contains(err.Error(), "nope") {
		t.Fatalf("error %q does not name the key", err)
	}
}

func TestHiddenDelete(t *testing.T) {
	s := New()
	_ = s.Set("a", "1")
	if err := s.Delete("a"); err != nil {
		t.Fatalf("Delete(a) = %v, want nil", err)
	}
	if err := s.Delete("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete(a) = %v, want ErrNotFound", err)
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d after delete, want 0", s.Len())
	}
}

func TestHiddenErrNotFoundMessage(t *testing.T) {
	if ErrNotFound.Error() != "kv: key not found" {
		t.Fatalf("ErrNotFound = %q", ErrNotFound)
	}
}
