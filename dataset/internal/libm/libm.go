// Package libm exposes the C library's pow, so that tables libpng computes
// with it (gamma correction) can be reproduced bit for bit.
package libm

/*
#cgo LDFLAGS: -lm
#include <math.h>
*/
import "C"

// Pow returns the C library's pow(x, y).
func Pow(x, y float64) float64 { return float64(C.pow(C.double(x), C.double(y))) }
