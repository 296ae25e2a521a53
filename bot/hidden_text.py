"""Text a person cannot see: found, counted and removed (pure; a leaf the agent's prompt
hygiene and the policy's Trojan Source check both read).

An issue, a comment, a review, a spec and a repository's instruction files are read by a
person as rendered Markdown; the model reads the raw text. Whatever the rendering hides is an
instruction only the model would see, so it is removed before any prompt is built:

- HTML comments (``<!-- ... -->``, and one left open to the end of the text);
- Markdown link reference definitions (``[//]: # (hidden)``, ``[x]: <> "hidden"``), which
  render as nothing;
- Unicode tag characters (U+E0000-U+E007F), zero-width and invisible formatting characters,
  and bidirectional controls (the "Trojan Source" class).

``clean`` returns the text and how much of each kind went, never what it said: the job's
events and comments report the counts, and the hidden text is not repeated anywhere.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# Zero-width and invisible formatting: ZWSP, ZWNJ, ZWJ, LRM, RLM, word joiner and the
# invisible operators, BOM / ZWNBSP, soft hyphen, Mongolian vowel separator, ALM.
INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u061c"
)
# Bidirectional embeddings, overrides and isolates.
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TAGS = re.compile("[\U000e0000-\U000e007f]")
_HIDDEN_CHARS = re.compile(
    "[" + "".join(sorted(INVISIBLE | BIDI)) + "\U000e0000-\U000e007f]"
)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# A link reference definition on a line of its own (CommonMark: up to three spaces of
# indentation, a label, a colon, a destination and an optional title).
_LINK_DEFINITION = re.compile(
    r"^ {0,3}\[[^\]\n]{1,999}\]:[ \t]*(?:<[^>\n]*>|\S+)(?:[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'"
    r"|\([^)\n]*\)))?[ \t]*$\n?",
    re.MULTILINE,
)

KIND_NAMES = {
    "html_comment": ("HTML comment", "HTML comments"),
    "link_definition": ("Markdown link-definition comment", "Markdown link-definition comments"),
    "tag_characters": ("Unicode tag character", "Unicode tag characters"),
    "invisible_characters": ("zero-width or invisible character",
                             "zero-width or invisible characters"),
    "bidi_controls": ("bidirectional control", "bidirectional controls"),
}


@dataclass(frozen=True)
class Cleaned:
    """The visible text, and how many of each kind of hidden content were removed."""

    text: str
    removed: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return sum(self.removed.values()) > 0


def clean(text: str) -> Cleaned:
    """``text`` without what a reader of the rendered Markdown cannot see."""
    removed: Counter[str] = Counter()
    text, removed["html_comment"] = _HTML_COMMENT.subn("", text)
    text, removed["link_definition"] = _LINK_DEFINITION.subn("", text)
    for char in _HIDDEN_CHARS.findall(text):
        if _TAGS.match(char):
            removed["tag_characters"] += 1
        elif char in BIDI:
            removed["bidi_controls"] += 1
        else:
            removed["invisible_characters"] += 1
    text = _HIDDEN_CHARS.sub("", text)
    return Cleaned(text, Counter({k: v for k, v in removed.items() if v}))


def hidden_characters(line: str) -> Counter[str]:
    """The invisible, tag and bidi characters in one line (for the Trojan Source check)."""
    found: Counter[str] = Counter()
    for char in _HIDDEN_CHARS.findall(line):
        found["tag_characters" if _TAGS.match(char) else
              "bidi_controls" if char in BIDI else "invisible_characters"] += 1
    return found


def describe(removed: Counter[str]) -> str:
    """``1 HTML comment, 12 zero-width or invisible characters``: counts, never content."""
    parts = []
    for kind, count in removed.items():
        one, many = KIND_NAMES.get(kind, (kind, kind))
        parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts)
