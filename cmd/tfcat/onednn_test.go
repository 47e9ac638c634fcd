package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/internal/onednn"
)

// onednn.Wanted tells predict's image arguments from its flags' values by a
// list of the flags that take one: it must be predict's.
func TestOneDNNKnowsPredictFlags(t *testing.T) {
	var want []string
	for _, f := range predictCommand().Flags {
		if _, isBool := f.(*cli.BoolFlag); !isBool {
			want = append(want, f.Names()...)
		}
	}
	got := slices.Clone(onednn.PredictValueFlags)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("onednn.PredictValueFlags = %v; predict's flags with values are %v", got, want)
	}
}
