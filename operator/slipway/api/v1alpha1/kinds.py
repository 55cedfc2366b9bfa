"""What a CRD needs beyond the schema: names, scope, short names, printer columns.

Each kind module declares one ``KindInfo``; the CRD generator and the k8s layer read it, so a kind's
plural or short name is written exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import GROUP, VERSION


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry of the CRD."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class KindInfo:
    """Names and presentation of one custom resource kind."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)
    group: str = GROUP
    version: str = VERSION
    categories: tuple[str, ...] = ("slipway",)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


def condition_column(condition: str) -> PrinterColumn:
    """A column showing a condition's status (Ready: True/False/Unknown)."""
    return PrinterColumn(
        name=condition,
        json_path=f'.status.conditions[?(@.type=="{condition}")].status',
        description=f"Status of the {condition} condition.",
    )


PHASE = PrinterColumn("Phase", ".status.phase", description="Short summary of the state.")
AGE = PrinterColumn("Age", ".metadata.creationTimestamp", type="date")
