"""Audit rows written off the request path, in batches, without losing any.

A request only appends its record to an in-memory queue (constant time, no I/O); one daemon
thread drains the queue in batches of up to `batch_size` rows (or whatever arrived within
`max_wait_s`) and appends each batch in one transaction. If the database fails, the batch is
kept and retried with backoff, and new records keep queueing (up to `max_pending`; past that
the newest are counted as rejected and an error is logged, because unbounded memory would take
the whole gateway down). `close` flushes everything at shutdown. Log lines carry counts and
exception types only, never a record's content.

Each transaction has a fixed cost (the chain-head lock, a commit and its fsync) that dwarfs a
row's, so the window is a quarter of a second: at 100 requests/s that is ~25 rows a commit
instead of ~5. Waiting costs no durability the queue does not already have, and `flush` (the
feedback route, shutdown) cuts the wait short.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from server.audit.chain import AuditRecord
from server.audit.store import AuditStore

log = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, DisconnectionError)
"""Errors that say the database is unreachable or busy, not that it refuses the rows."""


class AuditWriter:
    def __init__(
        self,
        store: AuditStore,
        *,
        batch_size: int = 200,
        max_wait_s: float = 0.25,
        max_pending: int = 100_000,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.store = store
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._max_pending = max_pending
        self._max_backoff_s = max_backoff_s
        self._queue: deque[AuditRecord] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self.submitted = 0
        self.written = 0
        self.dropped = 0  # accepted, then given up (the database refused even the stripped row)
        self.rejected = 0  # never accepted: the queue was full
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        return self.submitted - self.written - self.dropped

    def submit(self, record: AuditRecord) -> None:
        """Queue one record; never blocks on the database."""
        with self._changed:
            if self.pending >= self._max_pending:
                self.rejected += 1
                if self.rejected == 1 or self.rejected % 1000 == 0:
                    log.error("audit queue full: %d record(s) rejected so far", self.rejected)
                return
            self._queue.append(record)
            self.submitted += 1
            if len(self._queue) >= self._batch_size:
                self._changed.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted so far is written; False if time ran out."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            target = self.submitted
            self._changed.notify_all()
            while self.written + self.dropped < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._changed.wait(remaining)
        return True

    def close(self, timeout_s: float) -> bool:
        """Flush, then stop the thread. False (and an error logged) if rows were left; the
        daemon thread then keeps retrying until the process exits."""
        flushed = self.flush(timeout_s)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout=max(timeout_s, 0.1))
        if not flushed:
            log.error("audit writer stopped with %d record(s) unwritten", self.pending)
        return flushed

    def _run(self) -> None:
        backoff = 0.1
        isolate = False  # after a batch the database refused: one record at a time
        while True:
            with self._changed:
                if not self._queue:
                    if self._stopping:
                        return
                    self._changed.wait(self._max_wait_s)
                    if not self._queue:
                        continue
                elif len(self._queue) < self._batch_size and not self._stopping and not isolate:
                    self._changed.wait(self._max_wait_s)  # let a batch gather
                count = 1 if isolate else min(len(self._queue), self._batch_size)
                batch = [self._queue[index] for index in range(count)]
            try:
                self.store.append(batch)
            except TRANSIENT as exc:  # the database is away: keep the batch, retry
                self.failures += 1
                log.warning(
                    "audit write failed (%s); %d record(s) pending, retrying in %.1f s",
                    type(exc).__name__,
                    self.pending,
                    backoff,
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            except Exception as exc:  # some record's values are refused (by the database,
                # or unserialisable): isolate it; the thread must outlive any one record
                self.failures += 1
                if count > 1:
                    isolate = True
                    continue
                if not self._write_stripped(batch[0], exc):
                    self._done(1, dropped=True)
                    continue
            backoff, isolate = 0.1, False
            self._done(count)

    def _write_stripped(self, record: AuditRecord, exc: Exception) -> bool:
        """Keep who/when/what-status of a record the database refused, without the values
        that made it refuse; False if even that fails."""
        log.error("audit record refused (%s); storing it stripped", type(exc).__name__)
        try:
            self.store.append([record.stripped()])
        except Exception as again:
            log.error("stripped audit record refused too (%s); dropped", type(again).__name__)
            return False
        return True

    def _done(self, count: int, *, dropped: bool = False) -> None:
        with self._changed:
            for _ in range(count):
                self._queue.popleft()
            if dropped:
                self.dropped += count
            else:
                self.written += count
            self._changed.notify_all()
