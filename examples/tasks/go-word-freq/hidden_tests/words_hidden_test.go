package words

import (
	"reflect"
	"testing"
)

func TestHiddenWordFreqCountsCaseInsensitively(t *testing.T) {
	got := WordFreq("Go is fun. go IS fast!")
	want := map[string]int{"go": 2, "is": 2, "fun": 1, "fast": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("WordFreq = %v, want %v", got, want)
	}
}

func TestHiddenWordFreqSeparators(t *testing.T) {
	got := WordFreq("don't stop-me now, 2024 now")
	want := map[string]int{"don": 1, "t": 1, "stop": 1, "me": 1, "now": 2, "2024": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("WordFreq = %v, want %v", got, want)
	}
}

func TestHiddenWordFreqUnicode(t *testing.T) {
	got := WordFreq("Café CAFÉ café")
	if len(got) != 1 || got["café"] != 3 {
		t.Fatalf("WordFreq = %v, want map[café:3]", got)
	}
}

func TestHiddenWordFreqEmpty(t *testing.T) {
	for _, text := range []string{"", "  ", "!?-"} {
		got := WordFreq(text)
		if got == nil || len(got) != 0 {
			t.Fatalf("WordFreq(%q) = %#v, want an empty non-nil map", text, got)
		}
	}
}
