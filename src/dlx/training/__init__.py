"""Training: the loop, early stopping, checkpoints, optimizers and schedulers."""
