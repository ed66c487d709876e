"""Import benchmark: the full project import vs bare imap-tools on the same realistic mailbox.

Usage:  .venv/bin/python bench/import.py [-n 10000] [--seed 42] [--seed-script PATH] [--json FILE]

Starts a private Dovecot (tests/support/dovecot.py), fills one mailbox with the realistic
generator from ../shared/mailbench/seed.py (or --seed-script), then reports, in one run:
  - imap-tools fetch(bulk=200, mark_seen=False) touching every field (no CRM work), msgs/s
  - the full import (`flask crm fetch`, a separate process like the worker) on SQLite and on
    PostgreSQL, msgs/s, and the ratio to imap-tools
  - the no-new-mail incremental sync time of the unchanged folder
  - peak memory (max RSS) of the importing process
  - the blob store in use (PostgreSQL: the database by default; --pg-files adds a run with
    CRM_BLOB_STORE=files) and, with --no-sync, the same imports again with os.fsync made a no-op
    in the importing process: what durability costs (a measurement only, never a setting)
Nothing is asserted: this reports figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench.support import bare_imap_tools, fresh_pg_database
from tests.support.dovecot import PASSWORD, Dovecot

PG_SERVER = os.environ.get("CRM_BENCH_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")


def seed_mailbox(server: Dovecot, user: str, n: int, seed: int, script: Path) -> dict:
    maildir = server.dir / "mail" / user
    out = subprocess.run(
        [sys.executable, str(script), "-n", str(n), "--seed", str(seed), "--maildir", str(maildir)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    server.doveadm("force-resync", "-u", user, "INBOX")
    return json.loads(out.stdout)


# The import without durability, for the measurement only: fsync a no-op in this process (and
# in the parse helper it forks), then the flask command line as usual.
NO_FSYNC = (
    "import os, sys; os.fsync = lambda fd: None; from flask.cli import main; sys.exit(main())"
)


def project_import(
    server: Dovecot,
    user: str,
    database_url: str,
    work: Path,
    blob_store: str = "",
    no_fsync: bool = False,
) -> dict:
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        CRM_INSTANCE_DIR=str(work / "instance"),
        CRM_DATA_DIR=str(work / "data"),
        CRM_BLOB_STORE=blob_store,
        CRM_MAIL_HOST_ALLOWLIST=f"127.0.0.1:{server.port}",
        CRM_MAIL_PASSWORD=PASSWORD,
    )
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    fetch_cmd = [sys.executable, "-c", NO_FSYNC, "--app", "app"] if no_fsync else flask

    def run(*args):
        return subprocess.run(
            [*flask, *args],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=3600,
        ).stdout

    run("db", "upgrade")
    run(
        "crm",
        "create-user",
        "bench",
        "--password",
        "bench-password",
        "--email",
        f"{user}@mailbench.example",
    )
    account = json.loads(
        run(
            "crm",
            "account",
            "add",
            "--user",
            "bench",
            "--email",
            f"{user}@mailbench.example",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--security",
            "none",
            "--login",
            user,
            "--password-env",
            "CRM_MAIL_PASSWORD",
            "--since",
            "2000-01-01",
        )
    )["id"]
    first = _timed_child([*fetch_cmd, "crm", "fetch", "--account", str(account), "--json"], env)
    again = _timed_child([*fetch_cmd, "crm", "fetch", "--account", str(account), "--json"], env)
    summary = first["summary"]
    return {
        "blob_store": blob_store
        or ("database" if database_url.startswith("postgresql") else "files"),
        "fsync": not no_fsync,
        "imported": summary["imported"],
        "duplicates": summary["duplicates"],
        "failed": summary["failed"],
        "seconds": summary["seconds"],
        "rate": round(summary["seen"] / summary["seconds"], 1) if summary["seconds"] else None,
        "process_seconds": first["wall"],
        "peak_rss_mb": first["peak_rss_mb"],
        "incremental_sync_seconds": again["summary"]["seconds"],
    }


def _timed_child(cmd, env) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    out = subprocess.run(
        cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=3600
    )
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "summary": json.loads(out.stdout.strip().splitlines()[-1]),
        "wall": round(wall, 2),
        "peak_rss_mb": round(max(peak, before) / 1024, 1),
    }


def _import_on(server: Dovecot, db: str, work: Path, blob_store: str, no_fsync: bool) -> dict:
    """One import on a fresh database of its own."""
    if db == "sqlite":
        work.mkdir(parents=True)
        return project_import(
            server, "alice", f"sqlite:///{work}/bench.sqlite3", work, blob_store, no_fsync
        )
    url, drop = fresh_pg_database(PG_SERVER)
    try:
        return project_import(server, "alice", url, work, blob_store, no_fsync)
    finally:
        drop()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--seed-script", type=Path, default=ROOT.parent / "shared" / "mailbench" / "seed.py"
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument(
        "--no-sync",
        action="store_true",
        help="also run each import with fsync a no-op (the durability cost, measured only)",
    )
    ap.add_argument(
        "--pg-files", action="store_true", help="also import on PostgreSQL with the file store"
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    os.chmod(work, 0o755)
    server = Dovecot(work / "dovecot").start(users=("alice",))
    try:
        corpus = seed_mailbox(server, "alice", args.n, args.seed, args.seed_script)
        bare_imap_tools(server, ["alice"])  # warm-up: Dovecot builds its caches on first access
        results = {
            "messages": args.n,
            "corpus_bytes": corpus.get("total_bytes"),
            "imap_tools": bare_imap_tools(server, ["alice"]),
        }
        runs = [("sqlite", "sqlite", "", False)]
        if args.no_sync:
            runs.append(("sqlite_no_fsync", "sqlite", "", True))
        if not args.skip_postgres:
            runs.append(("postgresql", "postgresql", "", False))
            if args.pg_files:
                runs.append(("postgresql_files", "postgresql", "files", False))
                if args.no_sync:
                    runs.append(("postgresql_files_no_fsync", "postgresql", "files", True))
        for name, db, blob_store, no_fsync in runs:
            results[name] = _import_on(server, db, work / name, blob_store, no_fsync)
        for db in [name for name, *_ in runs]:
            if db in results and results[db]["rate"]:
                results[db]["vs_imap_tools"] = round(
                    results[db]["rate"] / results["imap_tools"]["rate"], 2
                )
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
