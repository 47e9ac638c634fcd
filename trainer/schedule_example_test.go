package trainer_test

import (
	"fmt"

	"github.com/tfcat/tfcat/trainer"
)

func ExampleParseSchedule() {
	for _, s := range []string{"constant", "step:5:0.5", "cosine", "plateau:3"} {
		sc, err := trainer.ParseSchedule(s)
		if err != nil {
			panic(err)
		}
		fmt.Println(sc, sc.Scheduled())
	}
	_, err := trainer.ParseSchedule("linear")
	fmt.Println(err)
	// Output:
	// constant false
	// step:5:0.5 true
	// cosine:0 true
	// plateau:3:0.5:0 true
	// learning-rate schedule "linear": use constant, step, cosine or plateau
}
