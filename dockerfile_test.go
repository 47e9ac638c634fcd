package tfcat_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tfcat/tfcat"
	"github.com/tfcat/tfcat/internal/testenv"
)

// TestDockerfile checks what a Docker build cannot show on a machine without a
// Docker engine: the TensorFlow version comes only from TENSORFLOW_VERSION
// (through the install script), both variants exist, the image runs as a
// non-root user with tfcat as entrypoint, and hadolint finds nothing.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	version := tfcat.TensorFlowVersion()
	short := version[:strings.LastIndexByte(version, '.')]
	if strings.Contains(df, version) || strings.Contains(df, "tensorflow=="+short) || strings.Contains(df, "tensorflow-cpu==") {
		t.Errorf("Dockerfile names TensorFlow %s itself; it must come from TENSORFLOW_VERSION", version)
	}
	for _, want := range []string{
		`bash scripts/install-libtensorflow.sh --gpu`,
		`bash scripts/install-libtensorflow.sh`,
		`COPY . .`,
		`ARG VARIANT=cpu`,
		`FROM base-${VARIANT} AS runtime`,
		`ENTRYPOINT ["tfcat"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^FROM nvidia/cuda:12\.[0-9.]+-cudnn-runtime-\S+ AS base-gpu$`).MatchString(df) {
		t.Error("the gpu variant is not based on a CUDA 12 + cuDNN runtime image")
	}
	if !regexp.MustCompile(`(?m)^FROM debian:\S+-slim AS base-cpu$`).MatchString(df) {
		t.Error("the cpu variant is not based on a slim Debian image")
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 {
		t.Fatal("no USER: the image would run as root")
	}
	if u := users[len(users)-1][1]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") {
		t.Errorf("the image runs as %s", u)
	}
	// The build context must carry the version file the install script reads.
	if ign, err := os.ReadFile(".dockerignore"); err == nil {
		for _, line := range strings.Split(string(ign), "\n") {
			if p := strings.TrimSpace(line); p == "TENSORFLOW_VERSION" || p == "scripts" || p == "*" {
				t.Errorf(".dockerignore drops %s, which the build needs", p)
			}
		}
	}

	hadolint := filepath.Join(filepath.Dir(testenv.Python(t)), "hadolint")
	out, err := exec.Command(hadolint, "Dockerfile").CombinedOutput()
	if err != nil {
		t.Errorf("hadolint Dockerfile: %v\n%s", err, out)
	}
}
