"""Using what was trained: predict, export, load in Python.

This package owns the inference side of a run folder: opening a run's model from its
checkpoint and model card (`infer/model.py`), turning files and numbers into predictions with
the run's own preprocessing (`infer/predict.py`), exporting to TorchScript or ONNX with a
parity check (`infer/export.py`) and the notebook API behind `dlx.load_run` (`infer/api.py`).

It may import config, record, launch, training, tracking, data and models; never cli (the
Typer commands in `cli/use.py` call it).
"""
