package network

import (
	"encoding/json"
	"strconv"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// Info is what a tfcat checkpoint records beside the weights.
type Info struct {
	Classes []string // class names in label order; empty when unknown
	Step    int      // training steps taken
	// TrainerState is what a trainer needs to resume where it stopped
	// (best validation loss, learning-rate schedule state), opaque here:
	// stored in the .meta as it is and read back by InfoFromMeta.
	TrainerState []byte
}

// The collections tfcat adds to the .meta besides Python's own.
const (
	collectionClasses   = "tfcat_classes"    // bytes_list: class names in label order
	collectionInputSize = "tfcat_input_size" // int64_list: height, width, channels
	collectionStep      = "tfcat_global_step"
	collectionNetwork   = "tfcat_network"       // bytes_list: the Network as JSON
	collectionTrainer   = "tfcat_trainer_state" // bytes_list: Info.TrainerState
)

// Collections are tfcat's collections of the .meta of a checkpoint of net,
// which InfoFromMeta reads back: the input size, the step, net as JSON, and
// the class names and the trainer's state when there are any. Python's
// import_meta_graph keeps them as plain values.
func Collections(net Network, info Info) (map[string]*corepb.CollectionDef, error) {
	bytesList := func(vals [][]byte) *corepb.CollectionDef {
		return &corepb.CollectionDef{Kind: &corepb.CollectionDef_BytesList_{BytesList: &corepb.CollectionDef_BytesList{Value: vals}}}
	}
	int64List := func(vals ...int64) *corepb.CollectionDef {
		return &corepb.CollectionDef{Kind: &corepb.CollectionDef_Int64List_{Int64List: &corepb.CollectionDef_Int64List{Value: vals}}}
	}
	classes := make([][]byte, len(info.Classes))
	for i, c := range info.Classes {
		classes[i] = []byte(c)
	}
	netJSON, err := json.Marshal(net)
	if err != nil {
		return nil, err
	}
	cols := map[string]*corepb.CollectionDef{
		collectionInputSize: int64List(int64(net.Height), int64(net.Width), int64(net.Channels)),
		collectionStep:      int64List(int64(info.Step)),
		collectionNetwork:   bytesList([][]byte{netJSON}),
	}
	if len(classes) > 0 {
		cols[collectionClasses] = bytesList(classes)
	}
	if len(info.TrainerState) > 0 {
		cols[collectionTrainer] = bytesList([][]byte{info.TrainerState})
	}
	return cols, nil
}

// MetaInfo is what a .meta says about its model.
type MetaInfo struct {
	Info
	Network           *Network // nil unless tfcat wrote the checkpoint
	TensorFlowVersion string   // the version that wrote it
	Tfcat             bool     // written by tfcat (it has tfcat's collections)
}

// InfoFromMeta reads tfcat's collections, where present.
func InfoFromMeta(meta *corepb.MetaGraphDef) MetaInfo {
	var mi MetaInfo
	if meta.MetaInfoDef != nil {
		mi.TensorFlowVersion = meta.MetaInfoDef.TensorflowVersion
	}
	cols := meta.CollectionDef
	if c := cols[collectionClasses].GetBytesList(); c != nil {
		for _, v := range c.Value {
			mi.Classes = append(mi.Classes, string(v))
		}
	}
	if c := cols[collectionStep].GetInt64List(); c != nil && len(c.Value) == 1 {
		mi.Step = int(c.Value[0])
		mi.Tfcat = true
	}
	if c := cols[collectionTrainer].GetBytesList(); c != nil && len(c.Value) == 1 {
		mi.TrainerState = c.Value[0]
	}
	if c := cols[collectionNetwork].GetBytesList(); c != nil && len(c.Value) == 1 {
		var n Network
		if json.Unmarshal(c.Value[0], &n) == nil && n.Validate() == nil {
			mi.Network = &n
			mi.Tfcat = true
		}
	}
	return mi
}

// NumberedClasses names n classes by their index, "0", "1", ...: the names
// of a model that stores none (the Python tutorial's checkpoints).
func NumberedClasses(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// IsNumbered reports whether classes are NumberedClasses' placeholder names.
func IsNumbered(classes []string) bool {
	for i, c := range classes {
		if c != strconv.Itoa(i) {
			return false
		}
	}
	return true
}
