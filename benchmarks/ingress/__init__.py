"""Ingress benchmark: the Istio ingress stand-in's overhead against calling the model server."""
