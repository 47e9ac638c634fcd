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
// (through the install script), both variants exist, the base images are build
// arguments defaulting to the official images, the image runs as a non-root user
// with tfcat as entrypoint, and hadolint finds nothing. scripts/container-check.sh
// builds and runs the image.
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
	// The base images are build arguments (scripts/container-check.sh builds from
	// local stand-ins) whose defaults are the official images.
	for _, b := range []struct{ arg, stage, re, what string }{
		{"GO_IMAGE", "build", `golang:\$\{GO_VERSION\}-bookworm`, "Go on Debian bookworm"},
		{"CPU_BASE", "base-cpu", `debian:\S+-slim`, "a slim Debian image"},
		{"GPU_BASE", "base-gpu", `nvidia/cuda:12\.[0-9.]+-cudnn-runtime-\S+`, "a CUDA 12 + cuDNN runtime image"},
	} {
		if !regexp.MustCompile(`(?m)^ARG ` + b.arg + `=` + b.re + `$`).MatchString(df) {
			t.Errorf("the default of build argument %s is not %s", b.arg, b.what)
		}
		if !regexp.MustCompile(`(?m)^FROM \$\{` + b.arg + `\} AS ` + b.stage + `$`).MatchString(df) {
			t.Errorf("stage %s is not FROM ${%s}", b.stage, b.arg)
		}
	}
	if !regexp.MustCompile(`(?m)^ARG GO_VERSION=[0-9]+\.[0-9]+$`).MatchString(df) {
		t.Error("no ARG GO_VERSION=MAJOR.MINOR (scripts/container-check.sh reads it)")
	}
	// Labels: the version, the TensorFlow version (checked against the file in the
	// build) and the source; a HEALTHCHECK for serve; stripped libraries.
	for _, want := range []string{
		`org.opencontainers.image.version="${TFCAT_VERSION}"`,
		`com.github.tfcat.tensorflow.version="${TENSORFLOW_VERSION}"`,
		`org.opencontainers.image.source=`,
		`want=$(tr -d ' \n' < TENSORFLOW_VERSION)`,
		`HEALTHCHECK `,
		`strip --strip-unneeded`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if _, err := os.Stat("scripts/container-healthcheck.sh"); err != nil {
		t.Errorf("the HEALTHCHECK's script: %v", err)
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
