// Package tfcat holds facts the whole module shares. The TensorFlow version that
// tfcat is built, tested and shipped against is kept in the file
// TENSORFLOW_VERSION beside this one: the install script, the Dockerfile and the
// Go code all read it from there.
package tfcat

import (
	_ "embed"
	"strings"
)

//go:embed TENSORFLOW_VERSION
var tensorflowVersion string

// TensorFlowVersion is the pinned TensorFlow version, such as "2.18.0".
func TensorFlowVersion() string { return strings.TrimSpace(tensorflowVersion) }
