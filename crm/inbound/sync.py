"""The sync loop of one account: claim it, walk its folders in bounded batches, commit each
batch with its folder cursor, and record the outcome.

Per folder the cursor keeps UIDVALIDITY, `last_uid` (everything new above it is fetched in
ascending order) and `backfill_below` (the first import walks down from the newest message, so a
large mailbox shows its recent mail first). If UIDVALIDITY changes, the folder is listed again
and messages are matched by identity, so nothing is duplicated and links are kept.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm import settings
from crm.accounts.manage import connect, host_allowlist
from crm.accounts.oauth import needs_reauthorisation, reauth_text
from crm.db import utcnow
from crm.inbound import importing
from crm.inbound.claims import (
    LostClaim,
    claim,
    heartbeat,
    record_failure,
    record_success,
    release,
    users_receiving,
)
from crm.inbound.faults import crash_point
from crm.mail.errors import ImapError, MailError
from crm.mail.imap import ImapConnection
from crm.models import EmailLocation, FolderCursor, MailAccount, SyncRun
from crm.models.accounts import STALE_CLAIM

log = logging.getLogger(__name__)
LOST_CLAIM = "This fetch stalled past its lease; another fetch took the account over."


@dataclass
class Budget:
    """How much one job may do before it hands over to the next one."""

    batch_size: int = 200
    max_batches: int | None = None
    max_seconds: float | None = None


@dataclass
class SyncSummary:
    seen: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    remaining: int = 0
    done: bool = True
    busy: bool = False
    error: str | None = None
    run_id: int | None = None

    def as_dict(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "seen",
                "imported",
                "duplicates",
                "skipped",
                "failed",
                "seconds",
                "remaining",
                "done",
                "error",
            )
        }


@dataclass
class _Loop:
    session: Session
    conn: ImapConnection
    ctx: importing.ImportContext
    run: SyncRun
    budget: Budget
    summary: SyncSummary
    progress: Callable[[SyncSummary], None] | None
    claimed_at: datetime  # the claim's token, renewed with each batch
    started: float = field(default_factory=time.monotonic)
    batches: int = 0
    _pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        """One helper process parses while this one stores: both cores busy."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def out_of_budget(self) -> bool:
        b = self.budget
        return (b.max_batches is not None and self.batches >= b.max_batches) or (
            b.max_seconds is not None and time.monotonic() - self.started >= b.max_seconds
        )


def sync_account(
    services,
    account_id: int,
    budget: Budget | None = None,
    progress: Callable[[SyncSummary], None] | None = None,
    stale_after=STALE_CLAIM,
) -> SyncSummary:
    """Fetch new mail of one account until done or out of budget (then `done` is False)."""
    budget = budget or Budget()
    summary = SyncSummary()
    started = time.monotonic()
    session = services.Session()
    try:
        waiting = _waits_for_reconnect(session, account_id)
        if waiting:
            return SyncSummary(done=False, error=waiting)
        claimed_at = claim(session, account_id, stale_after=stale_after)
        if claimed_at is None:
            session.commit()
            return SyncSummary(busy=True, done=False)
        run = SyncRun(mail_account_id=account_id)
        session.add(run)
        session.commit()
        summary.run_id = run.id
        claim_box = [claimed_at]  # renewed by the loop, given up by _finish
        try:
            _sync_folders(services, session, account_id, run, budget, summary, progress, claim_box)
        except LostClaim as exc:
            session.rollback()  # the stalled batch: the sync that took over fetches it again
            summary.busy, summary.done = True, False
            log.warning("sync of account %s stopped: %s", account_id, exc)
        except MailError as exc:
            session.rollback()
            account = session.get(MailAccount, account_id)
            record_failure(session, account, exc)
            summary.error, summary.done = exc.plain, False
            log.warning("sync of account %s failed: %s (%s)", account_id, exc.plain, exc)
        finally:
            summary.seconds = round(time.monotonic() - started, 3)
            _finish(session, account_id, run, summary, claim_box[0])
    finally:
        session.close()
    return summary


def _waits_for_reconnect(session: Session, account_id: int) -> str | None:
    """An OAuth2 account the provider refused is not fetched until its owner reconnects it
    (the reason, for the caller); other accounts are not held up by it."""
    account = session.get(MailAccount, account_id)
    reason = reauth_text(account) if account and needs_reauthorisation(account) else None
    session.rollback()
    return reason


def _sync_folders(services, session, account_id, run, budget, summary, progress, claim_box):
    account = session.get(MailAccount, account_id)
    allowlist = host_allowlist(session, services.config.mail_host_allowlist)
    max_bytes = settings.get(session, "max_message_bytes")
    with connect(
        account, services.secret_box, allowlist, ca_file=services.config.mail_ca_file
    ) as conn:
        ctx = importing.load_context(
            session,
            account,
            services.blobs,
            max_bytes,
            users_receiving(session, account),
            sent_folders(conn, account),
        )
        loop = _Loop(session, conn, ctx, run, budget, summary, progress, claim_box[0])
        try:
            for folder in account.monitored_folders:
                _sync_folder(loop, folder)
                if loop.out_of_budget():
                    break
        finally:
            claim_box[0] = loop.claimed_at
            loop.close()
        summary.done = summary.remaining == 0 and not loop.out_of_budget()
    record_success(account)
    session.commit()


def sent_folders(conn: ImapConnection, account: MailAccount) -> set[str]:
    """The account's Sent folders: those the server marks \\Sent (RFC 6154), and the one the
    account names (its `sent_folder`, chosen in the account form; "Sent" unless changed)."""
    found = set(conn.sent_folders())
    if (account.sent_folder or "").strip():
        found.add(account.sent_folder.strip())
    return found


def _sync_folder(loop: _Loop, folder: str) -> None:
    session, conn, account = loop.session, loop.conn, loop.ctx.account
    status = conn.examine(folder)
    cursor = _cursor(session, account.id, folder)
    since = cursor.since or account.fetch_since
    if since is None:
        raise ImapError(plain="set a 'fetch since' date before the first fetch")
    if cursor.uidvalidity != status.uidvalidity:
        _start_listing(session, conn, cursor, status, since)
    cursor.server_messages, cursor.last_checked_at = status.messages, utcnow()
    if status.uidnext - 1 > cursor.last_uid:
        new = conn.uids_above(cursor.last_uid)
        if not _run_batches(loop, _Batches(folder, status.uidvalidity, cursor, "up"), new):
            return
        cursor.last_uid = max(cursor.last_uid, status.uidnext - 1)
    if cursor.backfill_below is not None:
        older = sorted(conn.uids_since(since, below=cursor.backfill_below), reverse=True)
        if not _run_batches(loop, _Batches(folder, status.uidvalidity, cursor, "down"), older):
            return
        cursor.backfill_below = None
    cursor.pending = 0
    session.commit()


def _start_listing(session, conn, cursor: FolderCursor, status, since) -> None:
    """First sync, or UIDVALIDITY changed: list the folder from `since`, newest first."""
    if cursor.uidvalidity is not None:
        # Old UIDs mean nothing now; identity dedupe re-finds the stored mail.
        session.execute(
            delete(EmailLocation).where(
                EmailLocation.mail_account_id == cursor.mail_account_id,
                EmailLocation.folder == cursor.folder,
                EmailLocation.uidvalidity == cursor.uidvalidity,
            )
        )
    uids = conn.uids_since(since)
    cursor.uidvalidity = status.uidvalidity
    cursor.last_uid = max(uids) if uids else status.uidnext - 1
    cursor.backfill_below = max(uids) + 1 if uids else None
    cursor.pending = len(uids)
    session.commit()


@dataclass
class _Batches:
    folder: str
    uidvalidity: int
    cursor: FolderCursor
    direction: str  # "up": new mail, ascending; "down": first import, newest first

    @property
    def historical(self) -> bool:
        """The listing of a folder read again after "Reset fetch state" (whose cursor alone
        carries a `since`): that mail was on the server before, it notifies nobody."""
        return self.direction == "down" and self.cursor.since is not None


def _run_batches(loop: _Loop, where: _Batches, uids: list[int]) -> bool:
    """Import `uids` batch by batch; False when the budget ran out first (the rest stays)."""
    batches = list(_chunks(uids, loop.budget.batch_size))
    pending = None  # a batch downloaded and being parsed while the one before is stored
    for i, batch in enumerate(batches):
        if loop.out_of_budget():
            _finish_batch(loop, where, pending)
            left = sum(len(b) for b in batches[i:])
            loop.summary.remaining += left
            if where.direction == "down":
                where.cursor.pending = left
            loop.session.commit()
            return False
        started = _start_batch(loop, where, batch, parallel=len(batches) > 1)
        _finish_batch(loop, where, pending)
        pending = started
    _finish_batch(loop, where, pending)
    return True


@dataclass
class _Started:
    uids: list[int]
    headers: dict
    candidates: list
    result: importing.BatchResult
    bodies: dict[int, bytes]
    prepared: Future | dict  # parsed in the helper process, or here when not worth it


def _start_batch(loop: _Loop, where: _Batches, uids: list[int], parallel: bool) -> _Started:
    """Headers, dedupe and filters, then bodies; parsing goes to the helper process."""
    session, ctx, conn = loop.session, loop.ctx, loop.conn
    loop.batches += 1
    headers = conn.fetch_headers(uids)
    crash_point("after-headers")
    candidates, result = importing.plan(session, ctx, where.folder, where.uidvalidity, headers)
    bodies = conn.fetch_bodies(importing.uids_to_download(ctx, candidates))
    items = [(c.uid, bodies[c.uid]) for c in candidates if c.uid in bodies]
    blob_target = importing.helper_blob_target(ctx) if parallel else None
    if parallel and items:
        prepared = loop.pool().submit(importing.prepare, items, blob_target, ctx.max_bytes)
    else:
        prepared = importing.prepare(items, blob_target, ctx.max_bytes)
    return _Started(uids, headers, candidates, result, bodies, prepared)


def _finish_batch(loop: _Loop, where: _Batches, started: _Started | None) -> None:
    """Store a started batch and commit it together with its folder cursor."""
    if started is None:
        return
    session, ctx = loop.session, loop.ctx
    prepared = started.prepared
    if isinstance(prepared, Future):
        prepared = prepared.result()
    importing.apply_prepared(ctx, started.candidates, started.bodies, prepared)
    kept = importing.ignored_after_download(session, ctx, started.candidates)
    result = started.result
    result.skipped += len(started.candidates) - len(kept)
    importing.write_blobs(ctx, kept)
    crash_point("after-blobs")
    _store(loop, where, started.headers, kept, result)
    cursor = where.cursor
    if where.direction == "up":
        cursor.last_uid = max(cursor.last_uid, max(started.uids))
    else:
        cursor.backfill_below = min(started.uids)
        # Live "how far behind" for the status panel, committed with the batch.
        cursor.pending = max(cursor.pending - len(started.uids), 0)
    cursor.imported += result.imported
    _count(loop, result)
    loop.claimed_at = heartbeat(session, ctx.account.id, loop.claimed_at)
    crash_point("before-commit")
    session.commit()
    crash_point("after-commit")
    if loop.progress:
        loop.progress(loop.summary)


def _store(loop, where: _Batches, headers, candidates, result) -> None:
    """Store a batch in one go; if that fails, store it message by message (each committed on
    its own) so one bad message, or a race with another account's sync, cannot stop the rest.
    A crash in between is harmless: a rerun finds the stored ones by their location."""
    session = loop.session
    try:
        importing.store(
            session,
            loop.ctx,
            where.folder,
            where.uidvalidity,
            candidates,
            result,
            historical=where.historical,
        )
        session.flush()
    except Exception:  # any failure: fall back to the careful path, logged here
        log.exception("batch store failed; storing message by message")
        session.rollback()
        _store_one_by_one(loop, where, headers, candidates, result)


def _store_one_by_one(loop, where: _Batches, headers, candidates, result) -> None:
    session, ctx = loop.session, loop.ctx
    result.imported = result.duplicates = 0
    for old in candidates:
        fresh, _ = importing.plan(
            session, ctx, where.folder, where.uidvalidity, {old.uid: headers[old.uid]}
        )
        for cand in fresh:
            cand.raw, cand.mail, cand.identity = old.raw, old.mail, old.identity
            cand.raw_sha256, cand.attachment_sha256 = old.raw_sha256, old.attachment_sha256
            cand.attachment_sizes = old.attachment_sizes
            if not _try_store(session, ctx, where, cand, result):
                _store_minimal(session, ctx, where, cand, result)


def _try_store(session, ctx, where: _Batches, cand, result) -> bool:
    try:
        importing.store(
            session,
            ctx,
            where.folder,
            where.uidvalidity,
            [cand],
            result,
            historical=where.historical,
        )
        session.commit()
        return True
    except Exception:  # one bad message must not stop the batch
        log.exception("message uid %s of %s could not be stored", cand.uid, where.folder)
        session.rollback()
        return False


def _store_minimal(session, ctx, where: _Batches, cand, result) -> None:
    """Keep a message that cannot be stored whole: headers, raw source and a problem note."""
    note = (
        "This message could not be stored completely; its original is kept and can be downloaded."
    )
    base = cand.mail or cand.headers_only
    cand.mail = dataclasses.replace(
        base, text="", html="", attachments=(), problems=(*base.problems, note)
    )
    cand.attachment_sha256, cand.attachment_sizes = [], []
    if not _try_store(session, ctx, where, cand, result):
        result.failed += 1


def _count(loop: _Loop, result: importing.BatchResult) -> None:
    s, run = loop.summary, loop.run
    s.seen += result.seen
    s.imported += result.imported
    s.duplicates += result.duplicates
    s.skipped += result.skipped
    s.failed += result.failed
    run.seen, run.imported, run.duplicates = s.seen, s.imported, s.duplicates
    run.skipped, run.failed = s.skipped, s.failed
    elapsed = max(time.monotonic() - loop.started, 1e-6)
    run.rate = round(s.seen / elapsed, 1)


def _cursor(session: Session, account_id: int, folder: str) -> FolderCursor:
    cursor = session.scalars(
        select(FolderCursor).where(
            FolderCursor.mail_account_id == account_id, FolderCursor.folder == folder
        )
    ).first()
    if cursor is None:
        cursor = FolderCursor(mail_account_id=account_id, folder=folder, last_uid=0)
        session.add(cursor)
        session.flush()
    return cursor


def _finish(session: Session, account_id: int, run: SyncRun, summary, claimed_at) -> None:
    run.state = (
        "failed" if summary.error or summary.busy else ("done" if summary.done else "partial")
    )
    run.error = summary.error or (LOST_CLAIM if summary.busy else None)
    run.finished_at, run.remaining = utcnow(), summary.remaining
    release(session, account_id, claimed_at)
    session.commit()


def _chunks(items: list[int], size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]
