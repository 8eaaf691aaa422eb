"""The ``headframe verify`` command: read inputs and key, check, print, exit 0/1/2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from agent.verify import verify_inputs
from agent.verify.clips import check_clips
from agent.verify.keys import KeyBindingError, KeySpec, parse_arg, unmatched
from agent.verify.live import LiveError, capture_live
from agent.verify.reader import InputSet, UnusableInput, read_jsonl
from agent.verify.report import render_text, to_json

EXIT_VERIFIED, EXIT_PROBLEMS, EXIT_UNUSABLE = 0, 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="check a captured record stream and/or a buffer export (chain, sequence, drops, gaps)",
        description="Exit code: 0 verified, 1 problems found, 2 the input could not be used. See docs/evidence.md.",
    )
    p.add_argument(
        "captures",
        nargs="*",
        type=Path,
        metavar="CAPTURE",
        help="JSON-lines file of received MQTT messages (bodies, or {topic, payload, received})",
    )
    p.add_argument(
        "--export",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a `headframe buffer export` file (records not yet sent); may be repeated",
    )
    p.add_argument(
        "--key-file",
        action="append",
        default=[],
        metavar="[GATEWAY[@FROM_SEQ]=]FILE",
        help="a gateway's chain key file (gateway.chain_key_file), bound to GATEWAY (site/gateway or "
        "gateway) and, after a rotation, to the seqs from FROM_SEQ on; a bare FILE only when the input "
        "holds one gateway; repeatable",
    )
    p.add_argument(
        "--no-key-ok", action="store_true", help="exit 0 for a clean LINKS ONLY result (no key: content not authenticated)"
    )
    p.add_argument(
        "--allow-edges",
        action="store_true",
        help="exit 0 for VERIFIED EXCEPT EDGES (seqs at the edges of a --capture-live not proven)",
    )
    p.add_argument(
        "--evidence-dir",
        type=Path,
        metavar="DIR",
        help="re-hash the evidence clips the records name, relative to DIR (the gateway's buffer directory, "
        "or the <export>.clips directory of an export)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument(
        "--silence",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="list records further apart than this with no gap record between them (default 300)",
    )
    live = p.add_argument_group("live capture")
    live.add_argument("--capture-live", action="store_true", help="subscribe to the broker and capture first")
    live.add_argument("--broker", metavar="HOST[:PORT]")
    live.add_argument("--topic", metavar="ROOT/#", help="e.g. headframe/mine-a/gw-01/#")
    live.add_argument("--seconds", type=float, default=60.0)
    live.add_argument("--ca-file", type=Path, help="use TLS, verifying the broker against this CA")
    live.add_argument("--username")
    live.add_argument("--password-file", type=Path)
    live.add_argument(
        "-o", "--output", type=Path, help="where the live capture is written (default ./headframe-capture-<time>.jsonl)"
    )
    p.set_defaults(func=cmd_verify)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_UNUSABLE


def read_keys(args: list[str]) -> list[KeySpec]:
    """Keys as the agent reads them (file bytes, surrounding whitespace stripped), with their binding.

    The key bytes are never printed; only the file name is, to say which key verified what.
    """
    keys = []
    for arg in args:
        try:
            gateway, from_seq, path = parse_arg(arg)
        except KeyBindingError as exc:
            raise UnusableInput(str(exc)) from None
        try:
            key = path.read_bytes().strip()
        except FileNotFoundError:
            raise UnusableInput(
                f"key file {path}: no such file; give the gateway's chain key file (gateway.chain_key_file in its config)"
            ) from None
        except OSError as exc:
            raise UnusableInput(
                f"key file {path}: cannot be read ({exc.strerror}); it is mode 0600, run as its owner or root"
            ) from None
        if not key:
            raise UnusableInput(f"key file {path}: is empty")
        keys.append(KeySpec(gateway, from_seq, key, path.name))
    return keys


def cmd_verify(args: argparse.Namespace) -> int:
    captures: list[Path] = list(args.captures)
    if args.capture_live:
        if not args.broker or not args.topic:
            return _fail("--capture-live needs --broker HOST[:PORT] and --topic ROOT/#")
        if args.seconds <= 0:
            return _fail("--seconds must be positive")
        out = args.output or Path(time.strftime("headframe-capture-%Y%m%dT%H%M%SZ.jsonl", time.gmtime()))
        try:
            keys = read_keys(args.key_file)  # fail before waiting N seconds
            n = capture_live(
                args.broker,
                args.topic,
                args.seconds,
                out,
                ca_file=args.ca_file,
                username=args.username,
                password_file=args.password_file,
            )
        except (LiveError, UnusableInput) as exc:
            return _fail(str(exc))
        print(f"captured {n} message(s) from {args.broker} in {args.seconds:g} s into {out}", file=sys.stderr)
    if not captures and not args.export and not args.capture_live:
        return _fail("nothing to verify: give a CAPTURE file, --export FILE, or --capture-live")
    inputs = InputSet()
    try:
        keys = read_keys(args.key_file)
        for path in captures:
            read_jsonl(path, "capture", inputs)
        if args.capture_live:
            read_jsonl(out, "live capture", inputs, live=True)
        for path in args.export:
            read_jsonl(path, "export", inputs)
    except UnusableInput as exc:
        return _fail(str(exc))
    if not inputs.records:
        detail = "; ".join(f"{p.origin}: {p.what}" for p in inputs.problems[:5])
        return _fail(
            "no records to verify: the input is empty or holds no Headframe record messages" + (f" ({detail})" if detail else "")
        )
    gateways = sorted({e.gateway_key for e in inputs.records})
    for name in unmatched(keys, gateways):
        print(f"warning: --key-file {name}=...: no gateway {name!r} in the input; its key was not used", file=sys.stderr)
    try:
        report = verify_inputs(inputs, keys, silence_s=args.silence, allow_edges=args.allow_edges, no_key_ok=args.no_key_ok)
    except KeyBindingError as exc:
        return _fail(str(exc))
    clips = None
    if args.evidence_dir is not None:
        if not args.evidence_dir.is_dir():
            return _fail(f"--evidence-dir {args.evidence_dir}: not a directory")
        clips = check_clips(report.gateways, inputs.records, args.evidence_dir)
    if args.json:
        print(json.dumps(to_json(report), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_text(report))
    if clips is not None and not args.json:
        checked, removed = clips
        gone = f"; {removed} removed by the gateway's clip budget, as its records say" if removed else ""
        print(f"{checked} evidence clip(s) checked under {args.evidence_dir}{gone}")
    return report.exit_code
