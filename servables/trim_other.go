//go:build !linux || !cgo

package servables

func trimMalloc() {}
