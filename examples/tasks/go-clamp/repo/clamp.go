// Package mathx holds small numeric helpers for the audio controls.
package mathx

// Clamp limits v to the closed range [lo, hi].
func Clamp(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return lo
	}
	return v
}

// Lerp interpolates linearly between a and b; t=0 gives a and t=1 gives b.
func Lerp(a, b, t float64) float64 {
	return a + (b-a)*t
}
