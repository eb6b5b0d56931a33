"""What a run shows: TensorBoard (tensorboard.py), the terminal (console.py), figures,
and the diagnostics that explain the curves."""
