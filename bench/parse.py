"""Parse rate of crm.mail.parse.parse() against imap-tools on the same bytes.

    .venv/bin/python bench/parse.py DIR [--rounds 3] [--limit N] [--json FILE]

DIR is a directory of .eml files or a Maildir (its cur/ and new/, subfolders included), e.g. one
made by ../shared/mailbench/seed.py -n 3000 --seed 1 --maildir /tmp/parsebench/mail/alice.
All files are read into memory first; each round then parses every message once per method, the
methods taking turns so that drift on a shared machine affects them alike. Reported: median
mails/s per method, how many messages fell back to the careful (compat32) reader, and the
problems parse() recorded. imap-tools is timed as its fetch() uses it (MailMessage.from_bytes,
touching subject, from, to, date, text, html and every attachment, plus msg.size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from imap_tools import MailMessage

from crm.mail import mime
from crm.mail.parse import parse


def message_files(root: Path) -> list[Path]:
    """Every message file under root: *.eml, or the files in Maildir cur/ and new/ folders."""
    found = [p for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")]
    found += [p for p in root.rglob("*.eml") if p.is_file()]
    return sorted(set(found))


def run_crm(raws: list[bytes]) -> dict:
    fell_back = 0
    careful = mime.careful_parts

    def counting(raw, notes):
        nonlocal fell_back
        fell_back += 1
        return careful(raw, notes)

    mime.careful_parts = counting
    problems: Counter[str] = Counter()
    try:
        started = time.perf_counter()
        for raw in raws:
            mail = parse(raw)
            problems.update(p[:60] for p in mail.problems)
        seconds = time.perf_counter() - started
    finally:
        mime.careful_parts = careful
    return {"seconds": seconds, "fell_back": fell_back, "problems": problems}


def run_imap_tools(raws: list[bytes]) -> dict:
    started = time.perf_counter()
    for raw in raws:
        msg = MailMessage.from_bytes(raw)
        _ = (msg.subject, msg.from_, msg.to, msg.date, msg.text, msg.html, msg.size)
        for att in msg.attachments:
            _ = (att.filename, att.content_type, att.payload)
    return {"seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="parse only the first N messages")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    files = message_files(args.directory)[: args.limit or None]
    if not files:
        print(f"no messages under {args.directory}", file=sys.stderr)
        return 1
    raws = [f.read_bytes() for f in files]
    rounds: dict[str, list[float]] = {"crm parse()": [], "imap-tools from_bytes": []}
    last_crm: dict = {}
    for _ in range(args.rounds):
        last_crm = run_crm(raws)
        rounds["crm parse()"].append(last_crm["seconds"])
        rounds["imap-tools from_bytes"].append(run_imap_tools(raws)["seconds"])

    n = len(raws)
    rates = {name: n / statistics.median(times) for name, times in rounds.items()}
    print(f"{n} messages, {sum(map(len, raws)) / 2**20:.1f} MiB, {args.rounds} rounds (median)")
    for name, times in rounds.items():
        runs = " ".join(f"{t:.2f}" for t in times)
        print(f"  {name:24} {rates[name]:8.0f} mails/s   runs (s): {runs}")
    ratio = rates["crm parse()"] / rates["imap-tools from_bytes"]
    print(f"  ratio crm / imap-tools   {ratio:8.1f}x")
    print(f"  fell back to compat32    {last_crm['fell_back']:8d} of {n}")
    for problem, count in last_crm["problems"].most_common(10):
        print(f"  problem x{count}: {problem}")
    if args.json:
        figures = {
            "messages": n,
            "rates": rates,
            "rounds": rounds,
            "ratio": ratio,
            "fell_back": last_crm["fell_back"],
            "problems": dict(last_crm["problems"]),
        }
        args.json.write_text(json.dumps(figures, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
