package mathx

import "testing"

func TestHiddenClamp(t *testing.T) {
	cases := []struct{ v, lo, hi, want int }{
		{15, 0, 10, 10},
		{10, 0, 10, 10},
		{11, 0, 10, 10},
		{0, 0, 10, 0},
		{-1, 0, 10, 0},
		{7, 0, 10, 7},
		{-5, -10, -1, -5},
		{0, -10, -1, -1},
	}
	for _, c := range cases {
		if got := Clamp(c.v, c.lo, c.hi); got != c.want {
			t.Errorf("Clamp(%d, %d, %d) = %d, want %d", c.v, c.lo, c.hi, got, c.want)
		}
	}
}
