// Package words has the text statistics behind the blog's tag cloud.
package words

import "strings"

// WordCount is the number of whitespace-separated words in text.
func WordCount(text string) int {
	return len(strings.Fields(text))
}
