package savedmodel

import (
	"os"
	"testing"

	"github.com/tfcat/tfcat/internal/testenv"
	_ "github.com/tfcat/tfcat/tflog" // TensorFlow's log lines off the test output, as off tfcat's
)

// TestMain fails the package in one line when the Python reference
// environment its tests compare against is missing.
func TestMain(m *testing.M) { os.Exit(testenv.RequirePython(m).Run()) }
