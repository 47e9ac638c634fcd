package tfc

import (
	"fmt"
	"sync"

	opdefpb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	"google.golang.org/protobuf/proto"
)

var (
	opDefsOnce sync.Once
	opDefs     map[string]*opdefpb.OpDef
	opDefsErr  error
)

// RegisteredOp is the OpDef of an op type in the linked library
// (AllOpList, parsed once).
func RegisteredOp(name string) (*opdefpb.OpDef, error) {
	opDefsOnce.Do(func() {
		var all opdefpb.OpList
		if opDefsErr = proto.Unmarshal(AllOpList(), &all); opDefsErr != nil {
			return
		}
		opDefs = make(map[string]*opdefpb.OpDef, len(all.Op))
		for _, op := range all.Op {
			opDefs[op.Name] = op
		}
	})
	if opDefsErr != nil {
		return nil, fmt.Errorf("reading the op registry: %w", opDefsErr)
	}
	if d := opDefs[name]; d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("op %s is not registered", name)
}
