"""A camera's lines and zones as the page edits them: listed from the config, checked, written back.

Every shape has the config path it came from (``cameras[2].lines[0].points``). The page sends
back only paths this module offered, with new points; they are checked here (the server is the
authority: a line of zero length or a point outside the picture is refused in the technician's
language) and written into the config text with the round-trip YAML parser, so the file keeps
its comments and layout and the diff shows just the moved points. The result is then saved
like any other edit (``ConfigEditor``: the loader decides, atomic write, reload, audit).
"""

from __future__ import annotations

import io
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from agent.web import i18n
from config.schema import Settings

#: a line shorter than this (share of the picture) is refused as "zero length": it counts nothing
MIN_LINE = 0.01
#: a zone of less area than this (share of the picture) is refused as flat
MIN_AREA = 1e-4
MAX_POINTS = 32

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Shape:
    kind: str  # line | zone | seal | belt | danger | hotwork
    name: str
    path: Path
    points: list[tuple[float, float]]

    @property
    def is_line(self) -> bool:
        return self.kind == "line"

    def doc(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": list(self.path), "points": [list(p) for p in self.points]}


def shapes_of(settings: Settings, camera: str) -> list[Shape] | None:
    """Every line and zone drawn on ``camera`` (None: no such camera in the file)."""
    index = next((i for i, c in enumerate(settings.cameras) if c.id == camera), None)
    if index is None:
        return None
    cam = settings.cameras[index]
    base: Path = ("cameras", index)
    shapes = [Shape("line", s.name, (*base, "lines", j, "points"), list(s.points)) for j, s in enumerate(cam.lines)]
    shapes += [Shape("zone", z.name, (*base, "zones", j, "polygon"), list(z.polygon)) for j, z in enumerate(cam.zones)]
    if cam.seal is not None:
        shapes.append(Shape("seal", "seal", (*base, "seal", "polygon"), list(cam.seal.polygon)))
    if cam.belt is not None:
        shapes.append(Shape("belt", "belt", (*base, "belt", "polygon"), list(cam.belt.polygon)))
        if cam.belt.danger_zone:
            shapes.append(Shape("danger", "danger_zone", (*base, "belt", "danger_zone"), list(cam.belt.danger_zone)))
    for k, z in enumerate(settings.rules.hotwork.zones):
        if z.camera == camera:
            shapes.append(Shape("hotwork", z.name, ("rules", "hotwork", "zones", k, "polygon"), list(z.polygon)))
    return shapes


def _points(raw: Any) -> list[tuple[float, float]] | None:
    if not isinstance(raw, list) or len(raw) > MAX_POINTS:
        return None
    out = []
    for p in raw:
        if not (
            isinstance(p, list)
            and len(p) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in p)
        ):
            return None
        out.append((float(p[0]), float(p[1])))
    return out


def _area(points: list[tuple[float, float]]) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True))) / 2


def check_edits(shapes: list[Shape], edits: Any, lang: i18n.Lang) -> tuple[list[Shape], list[str]]:
    """The edited shapes, or the reasons they are refused (in ``lang``)."""
    if not isinstance(edits, list) or not edits:
        return [], [i18n.text("bad_request", lang, detail='expected {"shapes": [{"path": [...], "points": [[x, y], ...]}]}')]
    known = {s.path: s for s in shapes}
    out, problems = [], []
    for edit in edits:
        raw_path = edit.get("path") if isinstance(edit, dict) else None
        ok_path = isinstance(raw_path, list) and all(isinstance(k, str | int) and not isinstance(k, bool) for k in raw_path)
        path = tuple(raw_path) if ok_path and raw_path is not None else ()
        shape = known.get(path)
        points = _points(edit.get("points")) if isinstance(edit, dict) else None
        if shape is None or points is None:
            problems.append(
                i18n.text("bad_request", lang, detail="a shape this camera does not have, or points not [[x, y], ...]")
            )
            continue
        what = i18n.text(f"shape_{shape.kind}", lang)
        bad = problems.copy()
        for n, (x, y) in enumerate(points, 1):
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                problems.append(
                    i18n.text("geometry_outside", lang, what=what, name=shape.name, n=n, x=round(x, 3), y=round(y, 3))
                )
        if shape.is_line:
            if len(points) != 2:
                problems.append(i18n.text("geometry_line_points", lang, what=what, name=shape.name))
            elif math.dist(*points) < MIN_LINE:
                problems.append(i18n.text("geometry_zero_length", lang, what=what, name=shape.name))
        elif len(points) < 3:
            problems.append(i18n.text("geometry_zone_points", lang, what=what, name=shape.name))
        elif _area(points) < MIN_AREA:
            problems.append(i18n.text("geometry_flat", lang, what=what, name=shape.name))
        if problems == bad:
            out.append(Shape(shape.kind, shape.name, shape.path, points))
    return out, problems


def _mapping_indent(text: str) -> int:
    """How far the file indents a mapping under a mapping key (2 when it never does)."""
    found = []
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for here, below in itertools.pairwise(rows):
        body = here.split(" #")[0].rstrip()
        if body.endswith(":") and not body.lstrip().startswith("- ") and not below.lstrip().startswith("-"):
            step = (len(below) - len(below.lstrip())) - (len(here) - len(here.lstrip()))
            if step > 0:
                found.append(step)
    return min(found, default=2)


def _yaml(text: str) -> tuple[YAML, Any]:
    """A round-trip parser writing with the file's own indentation, and the parsed file."""
    _, indent, offset = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    offset = offset or 0
    yaml.indent(mapping=_mapping_indent(text), sequence=max(indent or 2, offset + 2), offset=offset)
    return yaml, yaml.load(text)


def _parent(tree: Any, path: Path) -> dict[Any, Any]:
    """The mapping holding the path's last key (``KeyError`` naming the path when there is none)."""
    node: Any = tree
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            raise KeyError(".".join(map(str, path))) from None
    if not isinstance(node, dict):
        raise KeyError(".".join(map(str, path)))
    return node


def _refuse_shared(tree: Any, path: Path) -> None:
    """A node under a YAML anchor is shared with every alias of it: writing one camera's line
    there would move another camera's too, unseen in the diff. ``KeyError`` naming the path."""
    node: Any = tree
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return  # _parent says it is not in the file
        anchor = getattr(getattr(node, "anchor", None), "value", None)
        if anchor:
            raise KeyError(f"{'.'.join(map(str, path))} (shared through YAML anchor &{anchor}: edit it in the text editor)")


def apply_edits(text: str, edits: list[Shape]) -> str:
    """``text`` with each edited shape's points replaced (flow style, 4 decimals); comments kept.
    Raises ``KeyError`` naming the path when the file does not hold it (e.g. an included file).
    A file written as JSON (valid YAML; generated by tools) stays JSON, indented."""
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for shape in edits:
                _parent(doc, shape.path)[shape.path[-1]] = [[round(x, 4), round(y, 4)] for x, y in shape.points]
            return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    yaml, tree = _yaml(text)
    for shape in edits:
        _refuse_shared(tree, shape.path)
        node = _parent(tree, shape.path)
        seq = CommentedSeq()
        for x, y in shape.points:
            pair = CommentedSeq([round(x, 4), round(y, 4)])
            pair.fa.set_flow_style()
            seq.append(pair)
        seq.fa.set_flow_style()
        node[shape.path[-1]] = seq
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()
