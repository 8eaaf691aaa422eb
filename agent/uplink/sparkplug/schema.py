"""The Sparkplug B payload schema, declared with ``protobuf``'s descriptor API.

Why no generated ``_pb2`` module: the wire format is what has to match, not the source of the
schema. The messages below declare the part of the Sparkplug B payload (specification 3.0,
"Payload", package ``org.eclipse.tahu.protobuf``) this gateway writes and reads, with the
field numbers and types the specification gives; fields we never use (templates, data sets,
metadata) are left out, and protobuf keeps them as unknown fields when a host sends them.
The tests decode every message with an independently generated Sparkplug module
(``pysparkplug``), so a wrong number or type here fails there.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"


class DataType(IntEnum):
    """Sparkplug B data type codes (the ones this gateway uses)."""

    INT32 = 3
    INT64 = 4
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12


_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_SCALARS = {
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

# (name, number, type, repeated, in the ``value`` oneof); a type not in _SCALARS is a message.
_MESSAGES: dict[str, list[tuple[str, int, str, bool, bool]]] = {
    "Payload.PropertyValue": [
        ("type", 1, "uint32", False, False),
        ("is_null", 2, "bool", False, False),
        ("int_value", 3, "uint32", False, True),
        ("long_value", 4, "uint64", False, True),
        ("float_value", 5, "float", False, True),
        ("double_value", 6, "double", False, True),
        ("boolean_value", 7, "bool", False, True),
        ("string_value", 8, "string", False, True),
    ],
    "Payload.PropertySet": [
        ("keys", 1, "string", True, False),
        ("values", 2, "Payload.PropertyValue", True, False),
    ],
    "Payload.Metric": [
        ("name", 1, "string", False, False),
        ("alias", 2, "uint64", False, False),
        ("timestamp", 3, "uint64", False, False),
        ("datatype", 4, "uint32", False, False),
        ("is_historical", 5, "bool", False, False),
        ("is_transient", 6, "bool", False, False),
        ("is_null", 7, "bool", False, False),
        ("properties", 9, "Payload.PropertySet", False, False),
        ("int_value", 10, "uint32", False, True),
        ("long_value", 11, "uint64", False, True),
        ("float_value", 12, "float", False, True),
        ("double_value", 13, "double", False, True),
        ("boolean_value", 14, "bool", False, True),
        ("string_value", 15, "string", False, True),
        ("bytes_value", 16, "bytes", False, True),
    ],
    "Payload": [
        ("timestamp", 1, "uint64", False, False),
        ("metrics", 2, "Payload.Metric", True, False),
        ("seq", 3, "uint64", False, False),
        ("uuid", 4, "string", False, False),
        ("body", 5, "bytes", False, False),
    ],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="headframe/sparkplug_b.proto", package=PACKAGE, syntax="proto2")
    root = fd.message_type.add(name="Payload")
    nested = {name: root.nested_type.add(name=name.split(".", 1)[1]) for name in _MESSAGES if name != "Payload"}
    for name, fields in _MESSAGES.items():
        msg = root if name == "Payload" else nested[name]
        oneof = None
        for fname, number, ftype, repeated, in_oneof in fields:
            field = msg.field.add(name=fname, number=number, label=_REP if repeated else _OPT)
            if ftype in _SCALARS:
                field.type = _SCALARS[ftype]
            else:
                field.type, field.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{ftype}"
            if in_oneof:
                if oneof is None:
                    oneof = len(msg.oneof_decl)
                    msg.oneof_decl.add(name="value")
                field.oneof_index = oneof
    return fd


def _payload_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))


#: The protobuf message class of a Sparkplug B payload (``Payload()``, ``Payload.FromString(b)``).
Payload: Any = _payload_class()
