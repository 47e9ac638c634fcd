package dataset

import (
	"os"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv"
)

// TestMain fails the package in one line when the Python reference
// environment its tests compare against is missing.
func TestMain(m *testing.M) { os.Exit(testenv.RequirePython(m).Run()) }
