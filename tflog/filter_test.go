package tflog

import (
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	const (
		port  = "2026-12-03 18:19:21.075136: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.\n"
		guard = "2026-12-03 18:19:21.125094: I tensorflow/core/platform/cpu_feature_guard.cc:210] This TensorFlow binary is optimized ...\n" +
			"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.\n"
		warnTF = "2026-12-03 18:19:22.000001: W tensorflow/core/framework/op_kernel.cc:1840] something odd\n"
		errTF  = "2026-12-03 18:19:22.000002: E external/local_xla/xla/stream_executor/cuda/cuda_driver.cc:152] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected (100)\n"
		// What the CUDA build writes on a machine without an NVIDIA driver:
		// errors to TensorFlow, warnings to the filter.
		noDriver = "2026-12-04 02:18:40.290575: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:477] Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when one has already been registered\n" +
			"E0000 00:00:1796350720.316109   29966 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when one has already been registered\n" +
			"E0000 00:00:1796350720.320109   29966 cuda_blas.cc:1418] Unable to register cuBLAS factory: Attempting to register factory for plugin cuBLAS when one has already been registered\n" +
			"2026-12-04 02:18:40.375841: E external/local_xla/xla/stream_executor/cuda/cuda_driver.cc:152] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
		absl = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n" +
			"I0000 00:00:1796327056.397267   17206 mlir_graph_optimization_pass.cc:401] MLIR V1 optimization pass is not enabled\n"
		abslW = "W0000 00:00:1796327056.397300   17206 some.cc:1] a warning\n"
		plain = "a line of someone else's\n"
	)
	in := plain + port + guard + warnTF + absl + abslW + noDriver + errTF + plain
	for _, tc := range []struct {
		level int
		want  string
	}{
		{0, in},
		{1, plain + warnTF + abslW + noDriver + errTF + plain},
		{2, plain + errTF + plain},
		{3, plain},
	} {
		var out strings.Builder
		filter(strings.NewReader(in), &out, tc.level)
		if out.String() != tc.want {
			t.Errorf("level %d:\n got %q\nwant %q", tc.level, out.String(), tc.want)
		}
	}
}

func TestLevel(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{nil, 2},
		{map[string]string{"TF_CPP_MIN_LOG_LEVEL": "1"}, 1},
		{map[string]string{"TF_CPP_MIN_LOG_LEVEL": "0"}, 0},
		{map[string]string{"TF_CPP_MIN_LOG_LEVEL": ""}, 2},
		{map[string]string{"TF_CPP_MIN_LOG_LEVEL": "x"}, 0},
		{map[string]string{"TFCAT_TF_LOGS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}, -1},
		{map[string]string{"TFCAT_TF_LOGS": "0"}, 2},
	} {
		got := level(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if got != tc.want {
			t.Errorf("%v: level %d, want %d", tc.env, got, tc.want)
		}
	}
}
