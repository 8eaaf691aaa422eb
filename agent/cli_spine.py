"""``headframe check``, ``run`` and ``buffer stats|peek|export``."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from config import ConfigError, load_or_report, load_settings

if TYPE_CHECKING:
    import sqlite_utils


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="validate a config file; non-zero exit on any problem")
    p.add_argument("config", type=Path)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("run", help="run the agent")
    p.add_argument("-c", "--config", type=Path, required=True)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("buffer", help="inspect the durable buffer (safe while the agent runs)")
    p.add_argument("action", choices=["stats", "peek", "export"])
    p.add_argument("-c", "--config", type=Path, required=True)
    p.add_argument("-n", "--limit", type=int, default=10, help="peek: how many records")
    p.add_argument(
        "-o", "--output", type=Path, help="export: JSON-lines file, mode 0600, attachments as files beside it (default stdout)"
    )
    p.set_defaults(func=cmd_buffer)


def cmd_check(args: argparse.Namespace) -> int:
    from config.lang import current, render
    from config.messages import FRAME, problem_text

    lang = current()
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem_text(problem, lang), file=sys.stderr)
        print(render(FRAME, "check_failed", lang, file=args.config, count=len(exc.problems)), file=sys.stderr)
        return 1
    if settings.gateway.chain_key_file is not None:
        from buffer.chainkey import key_warning

        warning = key_warning(settings.gateway.chain_key_file)
        if warning:
            print(render(FRAME, "check_warning", lang, file=args.config, warning=warning), file=sys.stderr)
    print(
        render(
            FRAME,
            "check_ok",
            lang,
            file=args.config,
            site=settings.gateway.site,
            gateway=settings.gateway.id,
            devices=len(settings.devices),
            cameras=len(settings.cameras),
            broker=f"{settings.uplink.host}:{settings.uplink.effective_port}",
        )
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agent.daemon import run_daemon

    return run_daemon(args.config)


def _open_readonly(path: Path) -> sqlite_utils.Database:
    import sqlite_utils  # here, not at the top: it pulls in numpy, which `headframe run` must not carry

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    return sqlite_utils.Database(conn)


def cmd_buffer(args: argparse.Namespace) -> int:
    settings = load_or_report(args.config)
    if settings is None:
        return 1
    path = settings.buffer.path
    if not path.exists():
        print(f"no buffer database at {path} (buffer.path); the agent has not run yet", file=sys.stderr)
        return 1
    db = _open_readonly(path)
    if args.action == "stats":
        kinds = {0: "alarm", 1: "event", 2: "telemetry", 3: "health"}
        by_kind = {
            kinds[r["prio"]]: {"records": r["n"], "bytes": r["b"], "oldest_seq": r["first"]}
            for r in db.query("SELECT prio, COUNT(*) n, SUM(size) b, MIN(seq) first FROM records GROUP BY prio")
        }
        state = next(db.query("SELECT last_seq, total_bytes, clean_shutdown FROM state"), {})
        counters = {r["name"]: r["value"] for r in db.query("SELECT name, value FROM counters")}
        print(
            json.dumps(
                {"path": str(path), "file_bytes": path.stat().st_size, "unsent": by_kind, "state": state, "counters": counters},
                indent=2,
            )
        )
    elif args.action == "peek":
        for row in db.query("SELECT body FROM records ORDER BY prio, seq LIMIT ?", [args.limit]):
            print(json.dumps(orjson.loads(row["body"]), ensure_ascii=False))
    else:
        export(db, args.output, path.parent)
    return 0


def _private_file(path: Path) -> int:
    """Open ``path`` for writing with mode 0600 (also when it existed): exports hold evidence."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def attachment_file(jsonl: Path, seq: int, idx: int, name: str) -> Path:
    """``<jsonl>.<seq>.<idx>.<name>`` beside the export; the name is reduced to safe characters."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name).lstrip(".") or "attachment"
    return jsonl.with_name(f"{jsonl.name}.{seq}.{idx}.{safe}")


def export(db: sqlite_utils.Database, output: Path | None, evidence_root: Path | None = None) -> None:
    """All unsent records as JSON lines (the stored documents, verifiable with the chain key),
    each attachment as a file named by seq whose sha256 matches the record's metadata, and each
    evidence clip an exported record names copied to ``<output>.clips/<its path>`` (check them
    with ``headframe verify --export FILE --evidence-dir FILE.clips``)."""
    out = os.fdopen(_private_file(output), "wb") if output else sys.stdout.buffer
    n = files = skipped = clips = 0
    for row in db.query("SELECT seq, n_att, body FROM records ORDER BY seq"):
        out.write(row["body"] + b"\n")
        n += 1
        if output is not None and evidence_root is not None and b'"evidence_clip"' in row["body"]:
            clips += copy_clip(orjson.loads(row["body"]).get("payload", {}), evidence_root, output)
        if not row["n_att"]:
            continue
        if output is None:
            skipped += row["n_att"]
            continue
        for att in db.query("SELECT idx, name, data FROM attachments WHERE seq = ? ORDER BY idx", [row["seq"]]):
            fd = _private_file(attachment_file(output, row["seq"], att["idx"], att["name"]))
            with os.fdopen(fd, "wb") as fh:
                fh.write(att["data"])
            files += 1
    if output:
        out.close()
    print(f"exported {n} unsent record(s), {files} attachment file(s) and {clips} evidence clip(s)", file=sys.stderr)
    if skipped:
        print(f"{skipped} attachment(s) not exported: give -o FILE to write them beside the export", file=sys.stderr)


def copy_clip(payload: dict[str, object], root: Path, output: Path) -> int:
    """Copy one record's evidence clip beside the export (mode 0600); 0 when there is none to copy."""
    name = payload.get("file") if payload.get("event") == "evidence_clip" else None
    if not isinstance(name, str):
        return 0
    rel = Path(name)
    src = (root / rel).resolve()
    if rel.is_absolute() or ".." in rel.parts or not src.is_relative_to(root.resolve()) or not src.is_file():
        print(f"evidence clip {name!r} is not a file under {root}; not exported (verify will say so)", file=sys.stderr)
        return 0
    clips = output.with_name(output.name + ".clips")
    # the destination is built from the checked source, never from the record's text
    dst = clips / src.relative_to(root.resolve())
    if src == dst.resolve():
        print(f"evidence clip {name!r}: the export would overwrite the clip itself; not exported", file=sys.stderr)
        return 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, os.fdopen(_private_file(dst), "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return 1
