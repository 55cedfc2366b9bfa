"""Keep the status gauges (``slipway.statusmetrics``) in step with every object's watch events.

One event handler per kind: the initial listing and every change export the object's status,
a deletion removes its series. No API call and no reconcile: the body of the event is enough.
"""

from __future__ import annotations

from typing import Any

import kopf

from slipway import statusmetrics
from slipway.api.v1alpha1 import GROUP, KINDS, VERSION
from slipway.reconcilers.base import Context

from . import common


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    async def export(body: kopf.Body, type: str | None, **_: Any) -> None:
        if type == "DELETED":
            statusmetrics.forget(common.plain(body))
        else:
            statusmetrics.observe(common.plain(body))

    for kind in KINDS:
        kopf.on.event(GROUP, VERSION, kind.info.plural, id="status-metrics", registry=registry)(
            export
        )
