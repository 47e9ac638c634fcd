package checkpoint

// Checkpoint file names, as tf.compat.v1.train.Saver writes them: for a prefix
// P, P.index, P.data-00000-of-00001 and P.meta, plus the state file
// "checkpoint" beside them naming the latest prefix.
const (
	StateFile   = "checkpoint"
	IndexSuffix = ".index"
	DataSuffix  = ".data-00000-of-00001"
	MetaSuffix  = ".meta"
	// BestStateFile is the state file, in the "checkpoint" file's format,
	// that names the checkpoint with the lowest validation loss (tfcat train
	// --keep-best): Python reads it with
	// tf.train.latest_checkpoint(dir, latest_filename="best_checkpoint"),
	// and tfcat takes "DIR/best_checkpoint" wherever it takes a model.
	BestStateFile = "best_checkpoint"
	// BestSuffix is appended to the checkpoint name for the best checkpoint:
	// dogs-cats-model-best.
	BestSuffix = "-best"
)
