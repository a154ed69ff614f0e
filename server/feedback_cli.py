"""`clinserve feedback export`: clinician feedback as training data, one JSON object per line.

`--format` picks the training package's input format (see `server.feedback.export`): `sft`
(conversation plus the clinician's correction), `preference` (correction chosen over the
original answer, TRL's conversational shape) or `rubric` (answer plus scores). Lines go to
stdout, or to `--out FILE`, which is written to a temporary name and renamed at the end, so a
failed export never leaves a file that looks complete.

Each line's `meta.text_source` says where its texts came from: `retained` (the audit trail's
retained content) or `feedback_body` (sent with the feedback). The summary on stderr counts the
lines written and the feedback skipped for lacking texts or, for sft and preference, a
correction.

Reads the same settings as `clinserve serve` (`CLINSERVE_DATABASE_URL`, `CLINSERVE_DATA_DIR`);
`--database-url` and `--data-dir` override them, and the database is migrated to the newest
schema before use, like `clinserve keys`. Only stdlib at module level: `cli.main` imports this
module to build the parser. Errors an operator can act on print one line on stderr: exit 2 for
bad input, 1 for everything else.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from server.db_cli import database_options, guarded, open_database, parse_moment, write_jsonl

if TYPE_CHECKING:
    from server.feedback.store import FeedbackStore

FORMATS = ("sft", "preference", "rubric")  # server.feedback.export.FORMATS, without importing it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register `export` on the `clinserve feedback` parser."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = sub.add_parser(
        "export",
        help="write feedback as training data (JSONL)",
        description="Write clinician feedback as JSON lines in a training input format. "
        "Counts of lines written and feedback skipped go to stderr.",
    )
    export.add_argument("--format", required=True, choices=FORMATS, help="training format")
    export.add_argument("--tenant", metavar="NAME", help="only this tenant's feedback")
    export.add_argument(
        "--since",
        metavar="DATE",
        help="only feedback from this time on: YYYY-MM-DD (00:00 UTC) or an ISO datetime",
    )
    export.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    database_options(export)


def run(args: argparse.Namespace) -> int:
    """Export; map operator-facing failures to one stderr line."""
    from server.feedback.store import FeedbackError, FeedbackStore, InvalidExport, UnknownTenant

    def body() -> int:
        since = parse_moment(args.since, "--since") if args.since else None  # before the database
        with open_database(args) as database:
            return _export(FeedbackStore(database.sessions), args, since)

    return guarded(
        f"clinserve feedback {args.action}",
        body,
        usage=(InvalidExport, UnknownTenant),
        operator=(FeedbackError,),
    )


def _export(store: FeedbackStore, args: argparse.Namespace, since: datetime | None) -> int:
    from server.feedback.export import ExportCounts

    counts = ExportCounts()
    rows = store.export(args.format, tenant=args.tenant, since=since, counts=counts)
    target = write_jsonl(rows, args.out)
    if target is None:
        return 1  # the reader of stdout went away (`... | head`)
    print(
        f"wrote {counts.written} {args.format} lines to {target} "
        f"(texts: {counts.from_retained} retained, {counts.from_feedback_body} from feedback "
        f"bodies); skipped {counts.skipped_no_text} without texts, "
        f"{counts.skipped_no_correction} without a correction",
        file=sys.stderr,
    )
    return 0
