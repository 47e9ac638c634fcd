package pixels

import (
	"strings"
	"testing"
)

func TestParseResizeMode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ResizeMode
		err  string
	}{
		{"", Stretch, ""},
		{"stretch", Stretch, ""},
		{" Pad ", Pad, ""},
		{"CROP", Crop, ""},
		{"squash", "", `resize mode "squash": use stretch, pad or crop`},
	} {
		got, err := ParseResizeMode(c.in)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseResizeMode(%q) = %q, %v; want %q, %q", c.in, got, err, c.want, c.err)
		}
	}
}
