"""What a run shows: TensorBoard (tensorboard.py), the terminal (console.py, width.py), figures,
and the diagnostics that explain the curves.

May import `record`, `config`, `data`, `models`, `errors`; never `launch`, `sweeps`, `runs`,
`cli` (what needs them, such as checking a suggested command by preflight, is passed in)."""
