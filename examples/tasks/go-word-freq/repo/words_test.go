package words

import "testing"

func TestWordCount(t *testing.T) {
	if got := WordCount("  the quick\tbrown\nfox "); got != 4 {
		t.Fatalf("WordCount = %d, want 4", got)
	}
}
