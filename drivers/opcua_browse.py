"""``headframe probe opcua``: find node ids on a server, read a few, save its certificate.

A technician rarely has the PLC's node list; browsing from ``Objects`` shows every variable
with its node id (ready for ``node:`` in the config), data type and current value. Imported
only when the command runs (asyncua is an optional extra).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from asyncua import Client, ua
from cryptography.hazmat.primitives.serialization import Encoding

from config import load_or_report
from config.drivers import OpcUaDevice
from config.opcua import OpcUaSecurity, check_node_id
from drivers.errors import DriverError
from drivers.opcua_session import Target, close_quietly, describe, open_client, server_certificate

OBJECTS = "i=85"


@dataclass(frozen=True)
class Found:
    """One node under the start node."""

    node_id: str
    path: str
    node_class: str
    data_type: str = ""
    value: str = ""


async def browse(client: Client, start: str = OBJECTS, depth: int = 3, limit: int = 2000) -> list[Found]:
    """Objects and variables under ``start``, depth first, at most ``limit`` (big servers have 100k nodes)."""
    found: list[Found] = []

    async def walk(node_id: ua.NodeId, path: str, level: int) -> None:
        if level > depth or len(found) >= limit:
            return
        refs = await client.get_node(node_id).get_children_descriptions()
        for ref in refs:
            if len(found) >= limit:
                return
            if ref.NodeClass not in (ua.NodeClass.Object, ua.NodeClass.Variable):
                continue
            name = ref.BrowseName.Name or ref.NodeId.to_string()
            child_path = f"{path}/{name}" if path else name
            child = ref.NodeId
            if ref.NodeClass == ua.NodeClass.Variable:
                dv = await client.get_node(child).read_data_value(raise_on_bad_status=False)
                status = dv.StatusCode or ua.StatusCode()
                kind = dv.Value.VariantType.name if dv.Value is not None else ""
                shown = repr(dv.Value.Value) if dv.Value is not None and status.is_good() else status.name
                found.append(Found(child.to_string(), child_path, "Variable", kind, shown[:60]))
            else:
                found.append(Found(child.to_string(), child_path, "Object"))
            if child.NamespaceIndex != 0 or level < 1:  # the standard Server object is large and not the plant
                await walk(child, child_path, level + 1)

    await walk(ua.NodeId.from_string(start), "", 1)
    return found


def _target(args: argparse.Namespace) -> Target | None:
    """Endpoint, security and login from a configured device (``-c``), or a bare URL without security."""
    if args.config is None:
        if not str(args.target).startswith("opc.tcp://"):
            print(f"error: {args.target!r}: an opc.tcp:// URL, or a device id with -c CONFIG", file=sys.stderr)
            return None
        return Target(args.target, OpcUaSecurity(), None, args.timeout)
    settings = load_or_report(args.config)
    if settings is None:
        return None
    devices = {d.id: d for d in settings.devices if isinstance(d, OpcUaDevice)}
    dev = devices.get(args.target)
    if dev is None:
        print(f"no opcua device {args.target!r} in {args.config}; opcua devices: {', '.join(devices) or 'none'}", file=sys.stderr)
        return None
    return Target(dev.endpoint, dev.security, dev.login, args.timeout)


async def _run(args: argparse.Namespace, target: Target) -> int:
    if args.save_cert is not None:
        secured = target.security if target.security.policy != "None" else OpcUaSecurity.model_construct(policy="Basic256Sha256")
        cert = await server_certificate(Target(target.endpoint, secured, None, target.timeout))
        args.save_cert.write_bytes(cert.public_bytes(Encoding.DER))
        print(f"saved {describe(cert)} to {args.save_cert}: compare the fingerprint with the server's before trusting it")
        return 0
    client = await open_client(target)
    try:
        for node in args.read:
            dv = await client.get_node(node).read_data_value(raise_on_bad_status=False)
            status = dv.StatusCode or ua.StatusCode()
            value = dv.Value.Value if dv.Value is not None else None
            print(f"{node} = {value!r}" if status.is_good() else f"{node}: {status.name}")
        if args.browse is not None or not args.read:
            for f in await browse(client, args.browse or OBJECTS, args.depth):
                indent = "  " * (f.path.count("/"))
                extra = f"  {f.data_type} = {f.value}" if f.node_class == "Variable" else ""
                print(f"{indent}{f.path.rpartition('/')[2]:<28} {f.node_id:<32} {f.node_class}{extra}")
        return 0
    finally:
        await close_quietly(client)


def cmd_probe_opcua(args: argparse.Namespace) -> int:
    """Browse (default from Objects), read nodes, or save the server's certificate."""
    for node in [*args.read, *([args.browse] if args.browse else [])]:
        try:
            check_node_id(node)
        except ValueError as exc:
            print(f"error: {node!r}: expected {exc}", file=sys.stderr)
            return 2
    target = _target(args)
    if target is None:
        return 1
    try:
        return asyncio.run(_run(args, target))
    except DriverError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2
