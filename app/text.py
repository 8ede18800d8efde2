"""Text that came from a link, an upload or a model folder, made safe to show: never rendered as markdown."""

from __future__ import annotations

import re

SHOWN = 80  # characters of such a text shown; a folder or a link can carry a very long one
_MARKDOWN = re.compile(r"([\\`*_\[\]<>!|~$])")  # links, images, HTML, emphasis, code, tables, maths


def plain(value, limit: int = SHOWN) -> str:
    """`value` as text for st.markdown and friends: cut to `limit` characters, one line, every markdown and HTML
    character backslash-escaped (so a link, an image address or a heading shows as the characters it is made of;
    the escapes themselves do not show)."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[:limit] + "…"
    text = _MARKDOWN.sub(r"\\\1", text).replace("://", r":\/\/").replace("www.", r"www\.")  # no bare address
    text = re.sub(r"^(\d+)([.)])", r"\1\\\2", text)  # becomes a link, nor the start a numbered list
    return "\\" + text if text[:1] in ("#", "-", "+", "=") else text  # or a heading or a bullet
