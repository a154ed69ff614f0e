"""Auth, per-key limits and audit for the gateway overhead benchmark.

The gateway requires an API key on every /v1 route, applies per-key limits and writes one audit
row per /v1 request, so the benchmark measures it that way:

- `create_key` makes a key in the benchmark's data dir with `clinserve keys create`, exactly as
  an operator would, with limits far above the offered load: the limiter's bookkeeping runs on
  every request and refuses none;
- `KeyedClient` is the load generator's raw client with `Authorization: Bearer <key>` baked
  into its pre-encoded POSTs (the direct path to the mock keeps the plain client), so sending a
  request still costs one write;
- `GatewayTally` counts every request sent to the gateway's /v1 routes, per phase with its
  status histogram, from the records of each open-loop run (after the run, nothing on the hot
  path), so 401/429 answers cannot pass for fast successes;
- `audit_counts` compares that count with the rows in `audit_events` once the gateway has
  stopped (SIGTERM drains it and flushes the audit writer).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.loadgen import GATEWAY, Run
from benchmarks.processes import ROOT
from benchmarks.rawhttp import RawClient, Result

TENANT = "bench"
KEY_LIMITS = {"rpm": 100_000_000, "tpm": 2_000_000_000, "max_concurrent": 100_000}
KEY_ARGS = ["--tenant", TENANT, "--scopes", "chat",
            "--rpm", str(KEY_LIMITS["rpm"]), "--tpm", str(KEY_LIMITS["tpm"]),
            "--max-concurrent", str(KEY_LIMITS["max_concurrent"])]  # fmt: skip
KEY_COMMAND = "clinserve keys create " + " ".join(KEY_ARGS)

# Both the key command and the gateway use SQLite in the data dir (an inherited
# CLINSERVE_DATABASE_URL would send them elsewhere), which is where the audit rows are counted.
DATABASE_ENV = {"CLINSERVE_DATABASE_URL": ""}
DATABASE_FILE = "clinserve.db"
AUDIT_TABLE = "audit_events"


def create_key(data_dir: str | Path, env: dict[str, str] | None = None) -> str:
    """`python -m cli.main keys create ... --data-dir DIR`; the key is alone on its stdout."""
    argv = [
        sys.executable,
        "-m",
        "cli.main",
        "keys",
        "create",
        *KEY_ARGS,
        "--data-dir",
        str(data_dir),
    ]
    completed = subprocess.run(
        argv,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **DATABASE_ENV, **(env or {})},
        timeout=120,
        check=False,
    )
    key = completed.stdout.strip()
    if completed.returncode != 0 or not key or len(key.split()) != 1:
        raise RuntimeError(
            f"`{KEY_COMMAND}` failed (exit {completed.returncode}):\n{completed.stderr.strip()}"
        )
    return key


class KeyedClient(RawClient):
    """A RawClient whose pre-encoded POSTs carry `Authorization: Bearer <key>`.

    GETs (the /metrics scrape, readiness polls) stay unauthenticated: those routes need no key.
    """

    def __init__(self, host: str, port: int, key: str, max_connections: int = 1024) -> None:
        super().__init__(host, port, max_connections)
        self._authorization = f"Authorization: Bearer {key}\r\n".encode()

    def post(self, path: str, body: bytes) -> bytes:
        request_line, crlf, rest = super().post(path, body).partition(b"\r\n")
        return request_line + crlf + self._authorization + rest


def status_label(result: Result) -> str:
    """ "200", "401", ... or, when no response came, "no response (<why>)"."""
    if result.status:
        return str(result.status)
    reason = (result.error or "unknown").split(":")[0]
    return f"no response ({reason})"


@dataclass
class GatewayTally:
    """Requests the benchmark sent to the gateway's /v1 routes, by phase and status."""

    phases: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, phase: str, run: Run) -> None:
        counts = self.phases.setdefault(phase, Counter())
        counts.update(status_label(r.result) for r in run.records if r.path == GATEWAY)

    @property
    def sent(self) -> int:
        return sum(sum(counts.values()) for counts in self.phases.values())

    def total(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for counts in self.phases.values():
            out.update(counts)
        return out

    def summary(self) -> dict[str, Any]:
        """Sent, status histogram overall and per phase, and how many were not 200.

        `unexpected` leaves out only ramp requests that got no answer in time: past the
        gateway's ceiling timeouts are what the ramp looks for (its table shows them). Any HTTP
        status other than 200, in any phase, is unexpected.
        """
        non_200 = unexpected = 0
        for phase, counts in self.phases.items():
            for status, count in counts.items():
                if status != "200":
                    non_200 += count
                    unexpected += 0 if _expected(phase, status) else count
        return {
            "sent": self.sent,
            "statuses": _sorted(self.total()),
            "non_200": non_200,
            "unexpected": unexpected,
            "by_phase": {phase: _sorted(counts) for phase, counts in self.phases.items()},
        }


def _expected(phase: str, status: str) -> bool:
    return phase.startswith("ramp") and status.startswith("no response")


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items()))


def format_statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in statuses.items()) or "none"


def non_200_warning(summary: dict[str, Any]) -> str | None:
    """A loud multi-line warning with the status histogram, if any gateway request got an
    answer other than 200 (or none, outside the ramp's overload steps)."""
    if not summary["unexpected"]:
        return None
    lines = [
        "!" * 78,
        f"!! WARNING: {summary['unexpected']} of {summary['sent']} gateway requests did not get "
        "HTTP 200",
        f"!! statuses, all phases: {format_statuses(summary['statuses'])}",
    ]
    for phase, counts in summary["by_phase"].items():
        if any(status != "200" for status in counts):
            lines.append(f"!!   {phase}: {format_statuses(counts)}")
    lines += [
        "!! Latency figures count only successes; 401/403/429 mean the key or its limits are",
        "!! wrong, and the gateway numbers then describe refusals, not proxied requests.",
        "!" * 78,
    ]
    return "\n".join(lines)


def count_audit_rows(data_dir: str | Path) -> tuple[int | None, str | None]:
    """Rows in `audit_events` in the data dir's SQLite database, or (None, why not)."""
    path = Path(data_dir) / DATABASE_FILE
    if not path.exists():
        return None, f"no database at {DATABASE_FILE}"
    connection = sqlite3.connect(path)
    try:
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (AUDIT_TABLE,)
        ).fetchone()
        if found is None:
            return None, f"no {AUDIT_TABLE} table"
        (rows,) = connection.execute(f"SELECT COUNT(*) FROM {AUDIT_TABLE}").fetchone()
        return int(rows), None
    finally:
        connection.close()


def audit_counts(
    requests_sent: int, data_dir: str | Path, gateway_exit: int | None
) -> dict[str, Any]:
    """`{"requests_sent", "rows", "lost"}`, or rows None with a note when there is no table."""
    rows, note = count_audit_rows(data_dir)
    out: dict[str, Any] = {"requests_sent": requests_sent, "rows": rows}
    if rows is None:
        out["note"] = note
    else:
        out["lost"] = requests_sent - rows
    out["gateway_exit_code"] = gateway_exit
    if gateway_exit is None or gateway_exit < 0:
        out["gateway_note"] = (
            f"the gateway exited with {gateway_exit} (killed by a signal), not after a clean "
            "drain; rows may be missing"
        )
    return out


def markdown_line(audit: dict[str, Any], statuses: dict[str, Any]) -> str:
    """The RESULTS.md line saying the run had auth, per-key limits and audit on."""
    limits = ", ".join(f"{name} {value:,}" for name, value in KEY_LIMITS.items())
    if audit.get("rows") is None:
        counted = (
            f"{audit['requests_sent']} /v1 requests sent; audit rows not counted: "
            f"{audit.get('note', 'unknown')} in this build"
        )
    else:
        counted = (
            f"{audit['requests_sent']} /v1 requests sent, {audit['rows']} `{AUDIT_TABLE}` rows "
            f"after the SIGTERM drain, **{audit['lost']} lost**"
        )
    if audit.get("gateway_note"):
        counted += f" ({audit['gateway_note']})"
    answered = format_statuses(statuses["statuses"])
    if statuses["unexpected"]:
        answered = f"**{statuses['unexpected']} not HTTP 200** ({answered})"
    elif statuses["non_200"]:
        answered = (
            f"every answer HTTP 200; {statuses['non_200']} ramp requests past the gateway's "
            f"ceiling got none in time ({answered})"
        )
    else:
        answered = f"all HTTP 200 ({answered})"
    return (
        "- Auth, per-key limits and audit on: every gateway request carried "
        f"`Authorization: Bearer <key>` for a key made by `{KEY_COMMAND}` ({limits}: far above "
        "the offered load, so the limiter's bookkeeping runs on every request and refuses none); "
        f"`CLINSERVE_AUDIT=true`: {counted}. Gateway answers over all phases incl. warm-ups: "
        f"{answered}."
    )


def audit_summary(audit: dict[str, Any]) -> dict[str, Any]:
    """`{"requests_sent", "rows", "lost"}` (or `"note"`), without the exit-code details."""
    keys = ("requests_sent", "rows", "lost", "note", "gateway_note")
    return {key: audit[key] for key in keys if key in audit}
