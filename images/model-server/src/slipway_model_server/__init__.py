"""Slipway model server: ONNX models over the Open Inference Protocol (V2) REST API.

The package is the whole server image: settings from the environment (`settings`), model fetch
and digest check (`loader`), the onnxruntime wrapper (`model`), V2 JSON decoding and encoding
(`protocol`), adaptive batching (`batching`), Prometheus metrics (`metrics`), the ASGI app
(`app`), the process entry point (`__main__`) and the SeldonDeployment rendering (`seldon`).
"""

__version__ = "0.1.0"
