"""Slipway trainer: dataset snapshots, deterministic (distributed) training and ONNX export.

The operator launches this package for Dataset ingestion, TrainingJobs and TuningSweep trials;
the Kubeflow pipelines under ``pipelines/`` import it too. ``python -m slipway_trainer`` trains,
``python -m slipway_trainer.dataset`` ingests and verifies snapshots.
"""

__version__ = "0.1.0"
