"""Training: losses (the trainer and its checkpoints arrive with the training pipeline)."""
