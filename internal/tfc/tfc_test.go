package tfc

import (
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	"google.golang.org/protobuf/proto"
)

func TestFloat32InPlace(t *testing.T) {
	x, err := NewFloat32(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Float32s(x)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range v {
		if f != 0 {
			t.Fatalf("new tensor not zeroed: %v", v)
		}
	}
	v[4] = 2.5
	if got := x.Value().([][]float32)[1][1]; got != 2.5 {
		t.Errorf("write through Float32s not seen by the tensor: %v", got)
	}
	Free(x)
	Free(x) // a second free does nothing
	if Bytes(x) != nil {
		t.Error("a freed tensor still has bytes")
	}
	if _, err := NewFloat32(-1); err == nil {
		t.Error("negative dimension accepted")
	}
	i, _ := tf.NewTensor([]int32{1})
	if _, err := Float32s(i); err == nil {
		t.Error("Float32s of an int32 tensor gave no error")
	}
	Free(nil)
}

func TestAllOpList(t *testing.T) {
	var ops opdefpb.OpList
	if err := proto.Unmarshal(AllOpList(), &ops); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range ops.Op {
		names = append(names, o.Name)
	}
	all := strings.Join(names, " ")
	for _, want := range []string{"Conv2D", "ApplyAdam", "SaveV2", "VariableV2"} {
		if !strings.Contains(" "+all+" ", " "+want+" ") {
			t.Errorf("op registry lacks %s", want)
		}
	}
}
