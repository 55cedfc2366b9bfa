"""Slipway: a Kubernetes operator and CRD suite for production deep learning.

The package is layered top to bottom as ``handlers -> reconcilers -> backends | builders -> api``;
``api``, ``builders`` and ``backends`` never talk to the API server (``k8s/`` does).
"""

__version__ = "0.1.0"
