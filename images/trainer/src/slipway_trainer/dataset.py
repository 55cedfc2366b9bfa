"""Dataset ingestion: source -> validation -> immutable snapshot, as a function and a CLI.

    python -m slipway_trainer.dataset ingest --source builtin://digits --store /data --name digits \
        --version v1 [--rules '{"minRows": 100}' | --rules @rules.json] [--allow-identical]
    python -m slipway_trainer.dataset verify --uri /data/digits/v1 [--digest sha256:...]
    python -m slipway_trainer.dataset digest --source builtin://digits

``ingest`` and ``verify`` print one JSON object on stdout (``uri``, ``digest``, ``rows``, and the
validation report); failures exit non-zero with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from . import snapshot, storage
from .sources import SourceError, load_source
from .validation import Report, Rules, ValidationFailed, validate


@dataclass(frozen=True)
class IngestResult:
    uri: str
    digest: str
    rows: int
    report: Report


def parse_rules(text: str) -> Rules:
    """Rules from inline JSON, ``@path`` (any URI) or the empty string (defaults)."""
    if not text:
        return Rules()
    raw = storage.read_bytes(text[1:]).decode() if text.startswith("@") else text
    value: Any = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("validation rules must be a JSON object")
    return Rules.from_dict(value)


def ingest(
    source: str,
    store: str,
    name: str,
    version: str,
    rules: Rules | None = None,
    allow_identical: bool = False,
) -> IngestResult:
    """Load ``source``, validate it (``ValidationFailed`` has the report), write the snapshot."""
    table = load_source(source)
    report = validate(table, rules or Rules())
    if not report.ok:
        raise ValidationFailed(report)
    uri, digest = snapshot.write(
        table,
        store,
        name,
        version,
        source=source,
        validation=report.to_dict(),
        allow_identical=allow_identical,
    )
    return IngestResult(uri=uri, digest=digest, rows=table.num_rows, report=report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slipway_trainer.dataset", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_ingest = sub.add_parser("ingest", help="snapshot a source into a store")
    p_ingest.add_argument("--source", required=True)
    p_ingest.add_argument("--store", required=True)
    p_ingest.add_argument("--name", required=True)
    p_ingest.add_argument("--version", required=True)
    p_ingest.add_argument("--rules", default="", help="JSON object or @URI of one")
    p_ingest.add_argument(
        "--allow-identical", action="store_true", help="succeed if the version holds the same data"
    )
    p_verify = sub.add_parser("verify", help="verify a snapshot's files and digest")
    p_verify.add_argument("--uri", required=True)
    p_verify.add_argument("--digest", default="")
    p_digest = sub.add_parser("digest", help="print the digest a source would get")
    p_digest.add_argument("--source", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "ingest":
            result = ingest(
                args.source,
                args.store,
                args.name,
                args.version,
                parse_rules(args.rules),
                args.allow_identical,
            )
            print(result.report.to_text(), file=sys.stderr)
            out = {
                "uri": result.uri,
                "digest": result.digest,
                "rows": result.rows,
                "validation": result.report.to_dict(),
            }
        elif args.command == "verify":
            snap = snapshot.load(args.uri, args.digest or None)
            out = {"uri": snap.uri, "digest": snap.digest, "rows": snap.table.num_rows}
        else:
            out = {
                "source": args.source,
                "digest": snapshot.compute_digest(load_source(args.source)),
            }
    except (SourceError, snapshot.SnapshotError, ValidationFailed, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
