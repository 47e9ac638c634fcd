//go:build linux && cgo

package servables

// #include <malloc.h>
import "C"

// trimMalloc hands glibc's free heap pages back to the OS: a model's
// tensors, freed when it unloads, otherwise stay in malloc's arenas.
func trimMalloc() { C.malloc_trim(0) }
