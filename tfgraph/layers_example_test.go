package tfgraph_test

import (
	"fmt"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// A network beyond the tutorial's: two conv layers, two hidden layers, dropout
// in training and batch normalisation. The inference graph holds the
// normalisation's moving averages and no dropout.
func ExampleBuild_batchNorm() {
	net := network.Tutorial(10).WithInput(28, 28, 1)
	net.Conv = []network.ConvLayer{{Size: 3, Filters: 16}, {Size: 3, Filters: 32}}
	net.FC, net.MoreFC = 64, []int{32}
	net.Dropout, net.BatchNorm = 0.3, true
	m, err := tfgraph.Build(net, tfgraph.BuildOptions{InferenceOnly: true})
	if err != nil {
		panic(err)
	}
	for _, v := range m.Vars {
		fmt.Println(v.Name, v.Shape, v.Trainable)
	}
	// Output:
	// Variable [3 3 1 16] true
	// Variable_1 [3 3 16 32] true
	// Variable_2 [1568 64] true
	// Variable_3 [64 32] true
	// Variable_4 [32 10] true
	// Variable_5 [10] true
	// conv1/bn/gamma [16] true
	// conv1/bn/beta [16] true
	// conv1/bn/moving_mean [16] false
	// conv1/bn/moving_variance [16] false
	// conv2/bn/gamma [32] true
	// conv2/bn/beta [32] true
	// conv2/bn/moving_mean [32] false
	// conv2/bn/moving_variance [32] false
	// fc1/bn/gamma [64] true
	// fc1/bn/beta [64] true
	// fc1/bn/moving_mean [64] false
	// fc1/bn/moving_variance [64] false
	// fc2/bn/gamma [32] true
	// fc2/bn/beta [32] true
	// fc2/bn/moving_mean [32] false
	// fc2/bn/moving_variance [32] false
}
