"""The only place that talks to the API server: server-side apply, reads, status patches, events.

Everything above this layer passes plain manifests (dicts) and gets plain dicts back.
"""

from .client import ApiError, Cluster, connect
from .managed import contains, up_to_date

__all__ = ["ApiError", "Cluster", "connect", "contains", "up_to_date"]
