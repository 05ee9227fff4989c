"""The files a training run keeps in its run folder, named once; torch-free, as `study status` reads them."""
CHECKPOINT = "checkpoint.pt"  # the state an exact resume loads (study.train.checkpoint)
CHECKPOINT_FORMAT = 1  # that state's `format`: a run refuses a checkpoint of another
ENCODER = "encoder.pt"  # the trained encoder, what evaluations load (study.train.protocol.write_encoder)
