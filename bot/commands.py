"""Comment commands and who may give them, as pure functions over values (no IO).

A comment addresses the bot when its first line of its own (after blank lines, HTML comments
and a quoted reply) is a command::

    /retry [guidance]            @forgebot retry [guidance]
    /revise <feedback>           @forgebot /revise <feedback>
    /approve  /cancel  /status  /explain  /help

Names are case-insensitive. ``parse_comment`` returns a closed result:

- :class:`Command` — a known command and its argument;
- :class:`BadUsage` — a known command used wrongly (``/revise`` with no feedback); answer with
  its ``message``;
- :class:`UnknownCommand` — addressed to the bot but not a command; answer with
  :func:`help_text`;
- ``None`` — not addressed to the bot; say nothing.

An edited comment is parsed like a new one: whether an edit runs anything again is the
caller's decision. Who may give a command is :func:`permission_allows`; how often a refusal is
answered is :class:`ReplyLimiter`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeAlias, get_args

CommandName: TypeAlias = Literal[
    "retry", "revise", "approve", "cancel", "status", "explain", "help"
]
COMMAND_NAMES: tuple[CommandName, ...] = get_args(CommandName)

# Commands whose argument is free text that may span lines (guidance and feedback go to the
# model); the others take at most the rest of their own line.
_FREE_TEXT: frozenset[str] = frozenset({"retry", "revise"})
_REQUIRES_ARGUMENT: frozenset[str] = frozenset({"revise"})

_USAGE: dict[CommandName, tuple[str, str]] = {
    "retry": ("/retry [guidance]", "start a new attempt from scratch on the same branch; "
              "optional guidance (the rest of the comment) is given to the model"),
    "revise": ("/revise <feedback>", "start a new attempt from the current branch with your "
               "feedback (the rest of the comment, several lines allowed)"),
    "approve": ("/approve", "approve the posted plan of a job that waits for plan approval"),
    "cancel": ("/cancel", "cancel the running or queued job; nothing more is pushed"),
    "status": ("/status", "show where the job is: queued, running, published or failed"),
    "explain": ("/explain", "the model explains its change in a comment"),
    "help": ("/help", "show this help"),
}

# CommonMark: up to three spaces of indentation; four or more make an indented code block.
_QUOTE = re.compile(r"^ {0,3}>")
_CODE_INDENT = re.compile(r"^(?: {4}|\t)")
_COMMENT_OPEN = "<!--"
_COMMENT_CLOSE = "-->"
# A command word: a letter, then letters, digits, '-' or '_', then maybe the sentence
# punctuation people add ("/status?", "@bot retry!"). What follows must be a space or the end
# of the line, so '/etc/hosts', '/retry/now' and '/retry`' never read as commands.
_SLASH = re.compile(r"^/([A-Za-z][A-Za-z0-9_-]*)[.!?,:;]*(?=\s|$)(.*)$")
_WORD = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)[.!?,:;]*(?=\s|$)(.*)$")


@dataclass(frozen=True)
class Command:
    """A known command; ``argument`` is ``""`` when none was given."""

    name: CommandName
    argument: str = ""


@dataclass(frozen=True)
class BadUsage:
    """A known command used wrongly; ``message`` says how to use it (Markdown)."""

    name: CommandName
    message: str


@dataclass(frozen=True)
class UnknownCommand:
    """Addressed to the bot but not one of its commands; answer with the help text.

    ``mentioned`` is True when the bot was named (``@forgebot frobnicate``). A bare
    ``/frobnicate`` may belong to another bot on the same repository, so a caller may choose to
    answer only mentioned ones there.
    """

    word: str
    mentioned: bool


ParsedComment: TypeAlias = Command | BadUsage | UnknownCommand | None


def parse_comment(body: str, bot_name: str) -> ParsedComment:
    """What a comment asks of the bot named ``bot_name`` (``"forgebot"`` or ``"@forgebot"``).

    Only the first line of the comment's own text counts: leading blank lines, HTML comments
    and a quoted reply (``> ...``) are skipped, because a quote is someone else's words. A
    first line that opens a code fence, is indented code or starts with inline code is not a
    command. ``/retry`` and ``/revise`` take the rest of the comment as their argument; the other
    commands take the rest of their line.
    """
    lines = body.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    found = _first_own_line(lines)
    if found is None:
        return None
    index, first = found
    if _CODE_INDENT.match(first):
        return None
    head = first.strip()
    mentioned = False
    mention = _mention_pattern(bot_name).match(head)
    if mention:
        mentioned = True
        head = head[mention.end():].strip()
        if not head:
            return UnknownCommand("", mentioned=True)
        matched = _SLASH.match(head) or _WORD.match(head)
    else:
        matched = _SLASH.match(head)
    if matched is None:
        # "@forgebot `/retry`" or "@forgebot 🙏": addressed to the bot, but no command word.
        return UnknownCommand(head.split()[0], mentioned=True) if mentioned else None
    word, rest = matched.group(1).lower(), matched.group(2)
    name = _known(word)
    if name is None:
        return UnknownCommand(word, mentioned=mentioned)
    return _command(name, rest, lines[index + 1:])


def _first_own_line(lines: list[str]) -> tuple[int, str] | None:
    """Index and text of the first line that is neither blank, quoted nor an HTML comment."""
    in_quote = False
    in_comment = False
    for index, line in enumerate(lines):
        text = line
        if in_comment:
            if _COMMENT_CLOSE not in text:
                continue
            in_comment = False
            text = text.split(_COMMENT_CLOSE, 1)[1]
        while text.lstrip().startswith(_COMMENT_OPEN):
            after = text.lstrip()[len(_COMMENT_OPEN):]
            if _COMMENT_CLOSE not in after:
                in_comment = True
                text = ""
                break
            text = after.split(_COMMENT_CLOSE, 1)[1]
        if not text.strip():
            in_quote = False  # a blank line ends a quoted paragraph
            continue
        if _QUOTE.match(text):
            in_quote = True
            continue
        if in_quote:
            continue  # a lazy continuation line still belongs to the quote above it
        return index, text
    return None


def _mention_pattern(bot_name: str) -> re.Pattern[str]:
    name = bot_name.strip().lstrip("@").removesuffix("[bot]")
    # GitHub Apps appear as "name[bot]"; people add a colon or comma after a mention.
    return re.compile(
        rf"^@{re.escape(name)}(?:\[bot\])?(?![A-Za-z0-9_.\[-])[:,]?", re.IGNORECASE
    )


def _known(word: str) -> CommandName | None:
    for name in COMMAND_NAMES:
        if word == name:
            return name
    return None


def _command(name: CommandName, rest: str, following: list[str]) -> Command | BadUsage:
    if name in _FREE_TEXT:
        argument = "\n".join([rest.strip(), *following]).strip()
        argument = "\n".join(line.rstrip() for line in argument.split("\n"))
    else:
        argument = rest.strip()
    if name in _REQUIRES_ARGUMENT and not argument:
        usage, what = _USAGE[name]
        return BadUsage(name, f"`{usage}` needs text: {what}. For example:\n\n"
                              f"```\n/revise Use snake_case for the new function names.\n```")
    return Command(name, argument)


def usage(name: CommandName) -> str:
    """One line of Markdown: how to write ``name`` and what it does."""
    form, what = _USAGE[name]
    return f"`{form}` — {what}"


def help_text(bot_name: str, *, minimum: str = "write") -> str:
    """The Markdown answer to ``/help`` and to an unknown command.

    ``minimum`` is the policy's minimum permission, named so people know whether they may ask.
    """
    name = bot_name.strip().lstrip("@")
    rows = "\n".join(f"| `{_USAGE[n][0]}` | {_USAGE[n][1]} |" for n in COMMAND_NAMES)
    return (
        f"**{name}** understands these commands as the first line of a comment, "
        f"as `/command` or `@{name} command`:\n\n"
        f"| command | what it does |\n| --- | --- |\n{rows}\n\n"
        f"Commands need **{minimum}** permission on the repository or more. "
        f"A quoted command (`> /retry`) or one inside code is not read."
    )


# --- who may ---------------------------------------------------------------------------------

PERMISSION_LEVELS: tuple[str, ...] = ("none", "read", "triage", "write", "maintain", "admin")
# Gitea and Forgejo report a repository owner as "owner"; it can do everything admin can.
_ALIASES = {"owner": "admin"}


def _rank(level: str) -> int | None:
    level = level.strip().lower()
    level = _ALIASES.get(level, level)
    return PERMISSION_LEVELS.index(level) if level in PERMISSION_LEVELS else None


def permission_allows(actual: str, minimum: str) -> bool:
    """True when a user with ``actual`` permission meets ``minimum``.

    Levels, lowest first: ``none < read < triage < write < maintain < admin`` (case-insensitive;
    ``owner`` counts as ``admin``). An ``actual`` level not in that list is refused, so an
    unexpected answer from a forge never grants anything; a ``minimum`` not in it is a
    configuration mistake and raises ValueError.
    """
    needed = _rank(minimum)
    if needed is None:
        raise ValueError(f"unknown permission level {minimum!r}; use one of {PERMISSION_LEVELS}")
    held = _rank(actual)
    return held is not None and held >= needed


# --- polite refusals -------------------------------------------------------------------------


class ReplyLimiter:
    """At most one polite reply per user per item per ``window`` (an hour by default).

    Pure: the caller passes the time and persists :meth:`entries` between runs (restore with
    ``ReplyLimiter(entries=...)``). Users are compared case-insensitively, as forges do with
    logins; ``item`` is any stable key such as ``"acme/hello#12"``. Times must be
    timezone-aware, so a naive and an aware time are never compared.
    """

    def __init__(
        self,
        window: timedelta = timedelta(hours=1),
        entries: Iterable[tuple[str, str, datetime]] = (),
    ) -> None:
        if window <= timedelta(0):
            raise ValueError("the reply window must be positive")
        self.window = window
        self._last: dict[tuple[str, str], datetime] = {}
        for user, item, at in entries:
            _require_aware(at)
            key = (user.lower(), item)
            if key not in self._last or at > self._last[key]:
                self._last[key] = at

    def allow(self, user: str, item: str, now: datetime) -> bool:
        """True when a reply may be sent now, and records it; False when one was sent recently.

        A clock that went backwards counts as recent: a missed refusal is better than a
        repeated one.
        """
        _require_aware(now)
        key = (user.lower(), item)
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            return False
        self._last[key] = now
        return True

    def prune(self, now: datetime) -> None:
        """Forget replies older than the window, so the state stays small."""
        _require_aware(now)
        self._last = {key: at for key, at in self._last.items() if now - at < self.window}

    def entries(self) -> list[tuple[str, str, datetime]]:
        """The state to persist: ``(user, item, last reply time)``, sorted."""
        return sorted((user, item, at) for (user, item), at in self._last.items())


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("ReplyLimiter needs timezone-aware times (for example datetime.now(UTC))")
