"""AVA label maps: ``.pbtxt`` files of ``item { name: "..." id: N }`` blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Union

from avadet.errors import FormatError
from avadet.io.checks import check_readable

# ``item { ... }`` blocks; AVA v1.0 files wrote ``label { name: ... label_id: ... }``.
_ITEM = re.compile(r"(?:item|label)\s*\{(?P<body>[^{}]*)\}", re.S)
_NAME = re.compile(r"""(?:^|\s)(?:display_)?name\s*:\s*(?P<q>["'])(?P<name>.*?)(?P=q)""", re.S)
# The whole value token: "5.5" must not read as 5.
_ID = re.compile(r"(?:^|\s)(?:label_)?id\s*:[ \t]*(?P<id>[^\s#]*)")
_INTEGER = re.compile(r"[+-]?\d{1,10}")
# Label maps are a few kB; a bigger file is not one (and /dev/zero would never end).
MAX_BYTES = 10 * 1024 * 1024


@dataclass
class LabelMap:
    """Action classes by id. ``ids`` is sorted; ``names[id]`` is the class name."""

    names: dict[int, str] = field(default_factory=dict)

    @property
    def ids(self) -> list[int]:
        return sorted(self.names)

    def __contains__(self, action_id: object) -> bool:
        return action_id in self.names

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)

    def subset(self, ids: Iterable[int]) -> LabelMap:
        """The classes ``ids`` (each must be in this label map)."""
        ids = list(ids)
        missing = [i for i in ids if i not in self.names]
        if missing:
            raise KeyError(f"class ids not in the label map: {missing}")
        return LabelMap({i: self.names[i] for i in ids})

    def to_pbtxt(self) -> str:
        return "".join(f'item {{\n  name: "{self.names[i]}"\n  id: {i}\n}}\n' for i in self.ids)


def read_labelmap(path: Union[str, Path]) -> LabelMap:
    """Parse a label-map ``.pbtxt`` (fields in any order; ``label_type`` etc. ignored)."""
    path = Path(path)
    check_readable(path, "a label map (.pbtxt)")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FormatError(path, f"cannot read label map: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise FormatError(path, f"larger than {MAX_BYTES // 2**20} MB: not a label map")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError(path, f"not UTF-8 text (byte {data[exc.start]:#04x})", line) from None
    names: dict[int, str] = {}
    end = 0
    for match in _ITEM.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        between = text[end : match.start()].strip()
        if between and not between.startswith("#"):
            raise FormatError(path, f"unexpected text outside item blocks: {between[:40]!r}", line)
        end = match.end()
        body = match.group("body")
        name, idents = _NAME.search(body), list(_ID.finditer(body))
        if not idents:
            raise FormatError(path, "item without an id", line)
        at = [text.count("\n", 0, match.start("body") + i.start("id")) + 1 for i in idents]
        if len(idents) > 1:
            raise FormatError(path, f"item has {len(idents)} ids (lines {', '.join(map(str, at))})", at[-1])
        token = idents[0].group("id")
        if not _INTEGER.fullmatch(token) or abs(int(token)) >= 2**31:
            raise FormatError(path, f"id must be an integer below 2**31, found {token!r}", at[0])
        action_id = int(token)
        if action_id in names:
            raise FormatError(path, f"duplicate id {action_id}", line)
        names[action_id] = name.group("name") if name else str(action_id)
    rest = text[end:].strip()
    if rest and not rest.startswith("#"):
        line = text.count("\n", 0, end) + 1
        raise FormatError(path, f"unexpected text outside item blocks: {rest[:40]!r}", line)
    if not names:
        raise FormatError(path, "no 'item { name: ... id: ... }' blocks found")
    return LabelMap(names)


ASSETS = Path(__file__).resolve().parents[1] / "assets"


def ava_labelmap(evaluated_only: bool = True) -> LabelMap:
    """AVA v2.2's label map, shipped with avadet: the 60 evaluated classes
    (``ava_action_list_v2.2_for_activitynet_2019.pbtxt``) or all 80."""
    name = "ava_action_list_v2.2" + ("_for_activitynet_2019" if evaluated_only else "")
    return read_labelmap(ASSETS / f"{name}.pbtxt")


def write_labelmap(path: Union[str, Path], labelmap: LabelMap) -> None:
    from avadet.io.atomic import atomic_write

    with atomic_write(path) as handle:
        handle.write(labelmap.to_pbtxt())
