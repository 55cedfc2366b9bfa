"""Slipway's Kubeflow Pipelines v2 components and pipelines.

``components`` holds the typed components (ingest, validate, publish, train, evaluate, export); each
runs in the trainer image and delegates to ``slipway_trainer``. ``pipelines`` wires them into the
dataset-ingestion and training pipelines; ``compile`` writes both as IR YAML.
"""

import os

# The image every component runs in on a cluster; fixed at compile time.
TRAINER_IMAGE = os.environ.get("SLIPWAY_TRAINER_IMAGE", "ghcr.io/slipway-dev/slipway-trainer:0.1.0")
