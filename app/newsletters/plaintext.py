"""The plain-text edition of an issue's Markdown, as a person reads it in a phone's mail app.

Headings become 【見出し】, links 「text（URL）」, lists are indented with ・ or numbers, and long
lines are folded at a width that fits a phone (counting a full-width character as two
columns). URLs are never broken. Nothing of the Markdown syntax (##, **, [](…)) is left.
"""
from __future__ import annotations

import unicodedata

from markdown_it import MarkdownIt

WIDTH = 60  # columns: 30 full-width characters, a phone's mail app without wrapping

_parser = MarkdownIt("commonmark", {"html": False}).enable("table")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _fold(text: str, width: int, indent: str = "", first: str = "") -> list[str]:
    """Fold one paragraph: Japanese may break between any two characters; Latin words and
    URLs are kept whole (a too-long URL gets a line of its own)."""
    words: list[str] = []
    for piece in text.split(" "):
        if piece.isascii() and piece:
            words.append(piece)
        else:  # every full-width character may start a new line
            buffer = ""
            for ch in piece:
                if ch.isascii():
                    buffer += ch
                else:
                    if buffer:
                        words.append(buffer)
                        buffer = ""
                    words.append(ch)
            if buffer:
                words.append(buffer)
        words.append(" ")
    if words:
        words.pop()
    # An opening bracket stays with what follows it (「（https://…」 is one piece).
    merged: list[str] = []
    for word in words:
        if merged and merged[-1] and merged[-1][-1] in "（「『【(" and word != " ":
            merged[-1] += word
        else:
            merged.append(word)
    words = merged
    lines, line = [], first
    room = width - _width(first)
    for word in words:
        if word == " " and line.strip() == "":
            continue
        if _width(word) > room and line.strip():
            lines.append(line.rstrip())
            line, room = indent, width - _width(indent)
            if word == " ":
                continue
        # Kinsoku: no line starts with closing punctuation.
        if line == indent and lines and word in "、。，．）」』】！？・ー":
            lines[-1] += word
            continue
        line += word
        room -= _width(word)
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _inline(tokens) -> str:
    """The text of inline tokens, links as 「text（URL）」."""
    out, link, label = [], None, []
    for token in tokens or ():
        if token.type == "link_open":
            link, label = token.attrGet("href"), []
        elif token.type == "link_close":
            text = "".join(label)
            out.append(link if text == link or not text else f"{text}（{link}）")
            link = None
        elif token.type in ("text", "code_inline"):
            (label if link is not None else out).append(token.content)
        elif token.type in ("softbreak",):
            (label if link is not None else out).append(" ")
        elif token.type == "hardbreak":
            out.append("\n")
        elif token.type == "image":
            out.append(token.content or token.attrGet("alt") or "")
    return "".join(out)


def to_text(markdown: str, width: int = WIDTH) -> str:
    """Markdown as plain text."""
    tokens = _parser.parse(markdown or "")
    lines: list[str] = []
    lists: list[list] = []  # stack of [ordered, counter]
    quote = 0
    row: list[str] = []

    def prefix() -> str:
        return "> " * quote + "  " * max(0, len(lists) - 1)

    def blank() -> None:
        if lines and lines[-1] != "":
            lines.append("")

    pending_item = None
    for i, token in enumerate(tokens):
        kind = token.type
        if kind == "heading_open":
            blank()
        elif kind == "inline" and i and tokens[i - 1].type == "heading_open":
            level = int(tokens[i - 1].tag[1])
            text = _inline(token.children)
            lines.append(f"【{text}】" if level <= 2 else f"■ {text}")
        elif kind == "heading_close":
            lines.append("")
        elif kind in ("bullet_list_open", "ordered_list_open"):
            if not lists:
                blank()
            lists.append([kind == "ordered_list_open", int(token.attrGet("start") or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                lines.append("")
        elif kind == "list_item_open":
            ordered, counter = lists[-1]
            pending_item = f"{counter}. " if ordered else "・"
            if ordered:
                lists[-1][1] += 1
        elif kind == "blockquote_open":
            blank()
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
            lines.append("")
        elif kind == "inline" and i and tokens[i - 1].type == "paragraph_open":
            text = _inline(token.children)
            for n, part in enumerate(text.split("\n")):
                base = prefix()
                if pending_item is not None and n == 0:
                    first = base + pending_item
                    indent = base + " " * _width(pending_item)
                    pending_item = None
                elif lists:
                    first = indent = base + "  "
                else:
                    first = indent = base
                lines.extend(_fold(part, width, indent, first))
        elif kind == "paragraph_close" and not lists:
            lines.append("")
        elif kind in ("fence", "code_block"):
            blank()
            lines.extend(prefix() + "  " + line for line in token.content.rstrip("\n").split("\n"))
            lines.append("")
        elif kind == "hr":
            blank()
            lines.append("―" * (width // 4))
            lines.append("")
        elif kind == "tr_open":
            row = []
        elif kind == "inline" and i and tokens[i - 1].type in ("th_open", "td_open"):
            row.append(_inline(token.children))
        elif kind == "tr_close":
            lines.extend(_fold(" | ".join(row), width))
        elif kind == "table_close":
            lines.append("")
    while lines and lines[-1] == "":
        lines.pop()
    tidy = []
    for line in lines:  # never two empty lines in a row
        if line == "" and tidy and tidy[-1] == "":
            continue
        tidy.append(line)
    return "\n".join(tidy)
