"""Level-based reconcilers, one per kind: build -> server-side apply -> observe -> conditions.

A reconcile never asks which event fired; it compares what the spec asks for with what exists and
closes the gap, so running it twice in a row does nothing the second time.
"""
