package kv

import "errors"

// ErrEmptyKey is returned by Set for an empty key.
var ErrEmptyKey = errors.New("kv: empty key")
