package savedmodel

import (
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// ServingSignature is the SignatureDef an export carries as serving_default
// for a model taking height×width×channels images and telling classes apart:
// images → x:0, probabilities → y_pred:0, classes → y_pred_cls:0.
func ServingSignature(height, width, channels, classes int) *corepb.SignatureDef {
	return &corepb.SignatureDef{
		Inputs: map[string]*corepb.TensorInfo{
			InputKey: tensorInfo(inputTensor, typespb.DataType_DT_FLOAT, -1, int64(height), int64(width), int64(channels)),
		},
		Outputs: map[string]*corepb.TensorInfo{
			ProbabilitiesKey: tensorInfo(probabilitiesTensor, typespb.DataType_DT_FLOAT, -1, int64(classes)),
			ClassesKey:       tensorInfo(classesTensor, typespb.DataType_DT_INT64, -1),
		},
		MethodName: PredictMethod,
	}
}

func tensorInfo(name string, dtype typespb.DataType, dims ...int64) *corepb.TensorInfo {
	shape := &shapepb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return &corepb.TensorInfo{
		Encoding:    &corepb.TensorInfo_Name{Name: name},
		Dtype:       dtype,
		TensorShape: shape,
	}
}
