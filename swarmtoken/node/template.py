"""The text of a new node's ``node.toml`` (`swarm init`): every key of the documented
sample in `swarmtoken.node.config`'s docstring, with its explanation, commented out at its
default except the ones given, so the file a user opens documents every key it could set
and the documentation has one source."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import config as node_config
from .config import toml_value

_SECTION = re.compile(r"^\[(\w+)\]\s*(#.*)?$")
_KEY = re.compile(r"^(\w+) = (.*?)\s*(#.*)?$")


def node_template(values: Mapping[str, Mapping[str, Any]]) -> str:
    """``node.toml`` text setting ``values`` (section -> key -> value) and showing every other
    documented key commented out with its default."""
    doc = node_config.__doc__ or ""
    sample = doc[doc.index("    [chain]"):]
    lines: list[str] = ["# A swarm node's configuration: see `swarm train --help`. Commented keys keep their default.", ""]
    section: str | None = None
    written: set[tuple[str, str]] = set()

    def flush_extra(name: str | None) -> None:
        for key, value in (values.get(name, {}) if name else {}).items():
            if (name, key) not in written:
                lines.append(f"{key} = {toml_value(value)}")
                written.add((name, key))

    for raw in sample.splitlines():
        text = raw.strip()
        if not text:
            flush_extra(section)
            lines.append("")
            continue
        header = _SECTION.match(text)
        if header:
            flush_extra(section)
            section = header.group(1)
            lines.append(text)
            continue
        key = _KEY.match(text)
        if key and section is not None:
            name, default, comment = key.group(1), key.group(2), key.group(3) or ""
            if name in values.get(section, {}):
                value = toml_value(values[section][name])
                lines.append(f"{name} = {value}" + (f"  {comment}" if comment else ""))
                written.add((section, name))
            else:
                lines.append(f"# {name} = {default}" + (f"  {comment}" if comment else ""))
        elif text.startswith("#"):
            lines.append(f"#   {text.lstrip('#').strip()}")
    flush_extra(section)
    return "\n".join(lines).rstrip() + "\n"
