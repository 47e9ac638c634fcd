package onednn

import "testing"

func TestWantsOneDNN(t *testing.T) {
	cases := []struct {
		args []string
		want bool
	}{
		{[]string{"tfcat", "--onednn", "predict", "x.png"}, true},
		{[]string{"tfcat", "-onednn", "train"}, true},
		{[]string{"tfcat", "--onednn=true", "train"}, true},
		{[]string{"tfcat", "predict", "--onednn", "x.png"}, false}, // a command's flag, not the global one
		{[]string{"tfcat", "--onednn=false", "train"}, false},
		{[]string{"tfcat"}, false},
		{[]string{"tfcat", "version"}, false},
	}
	for _, c := range cases {
		if got := Wanted(c.args); got != c.want {
			t.Errorf("Wanted(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
