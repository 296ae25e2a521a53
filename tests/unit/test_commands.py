"""Comment commands, permissions and polite-refusal limits, as tables of plain values."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.commands import (
    COMMAND_NAMES,
    PERMISSION_LEVELS,
    BadUsage,
    Command,
    ParsedComment,
    ReplyLimiter,
    UnknownCommand,
    help_text,
    parse_comment,
    permission_allows,
    usage,
)

BOT = "forgebot"

# --- parse_comment: comments that are commands ----------------------------------------------

COMMANDS: list[tuple[str, str, ParsedComment]] = [
    ("bare retry", "/retry", Command("retry")),
    ("each name: revise", "/revise rename it", Command("revise", "rename it")),
    ("each name: approve", "/approve", Command("approve")),
    ("each name: cancel", "/cancel", Command("cancel")),
    ("each name: status", "/status", Command("status")),
    ("each name: explain", "/explain", Command("explain")),
    ("each name: help", "/help", Command("help")),
    ("upper case", "/RETRY", Command("retry")),
    ("mixed case", "/Approve", Command("approve")),
    ("trailing spaces", "/retry   ", Command("retry")),
    ("leading spaces (not code)", "   /status", Command("status")),
    ("tab after the word", "/retry\tplease", Command("retry", "please")),
    ("leading blank lines", "\n\n  \n/cancel", Command("cancel")),
    ("CRLF", "/revise use a dict\r\nand keep the order\r\n", Command(
        "revise", "use a dict\nand keep the order")),
    ("old Mac CR", "/revise one\rtwo", Command("revise", "one\ntwo")),
    ("byte order mark", "\ufeff/status", Command("status")),
    ("retry with guidance", "/retry the tests are flaky, just run again",
     Command("retry", "the tests are flaky, just run again")),
    ("retry guidance on following lines", "/retry\n\nPlease keep the public API as is.",
     Command("retry", "Please keep the public API as is.")),
    ("revise keeps case of feedback", "/REVISE Use `snake_case` for NAMES",
     Command("revise", "Use `snake_case` for NAMES")),
    ("revise multi-line feedback", (
        "/revise a few things:\n"
        "\n"
        "- rename `greet2` to `farewell`\n"
        "- add a test for the empty name   \n"
        "\n"
        "```python\n"
        "assert farewell('') == 'Goodbye, world!'\n"
        "```\n"
    ), Command("revise", (
        "a few things:\n"
        "\n"
        "- rename `greet2` to `farewell`\n"
        "- add a test for the empty name\n"
        "\n"
        "```python\n"
        "assert farewell('') == 'Goodbye, world!'\n"
        "```"
    ))),
    ("revise feedback only on later lines", "/revise\nDo not touch the README.",
     Command("revise", "Do not touch the README.")),
    ("other commands keep only their line", "/cancel wrong issue\nsorry about the noise",
     Command("cancel", "wrong issue")),
    ("help with a topic", "/help retry", Command("help", "retry")),
    ("question mark after the word", "/status?", Command("status")),
    ("exclamation mark after the word", "/approve!", Command("approve")),
    ("emoji argument", "/retry 🙏 pretty please", Command("retry", "🙏 pretty please")),
    ("emoji on a later line", "/approve\n\n🚀 ship it", Command("approve")),
    ("mention with slash", "@forgebot /retry", Command("retry")),
    ("mention without slash", "@forgebot retry", Command("retry")),
    ("mention, upper-case name", "@ForgeBot STATUS", Command("status")),
    ("mention with colon", "@forgebot: cancel", Command("cancel")),
    ("mention with comma", "@forgebot, explain", Command("explain")),
    ("mention of the app user", "@forgebot[bot] /approve", Command("approve")),
    ("mention then revise", "@forgebot revise keep the old name\nand update the docs",
     Command("revise", "keep the old name\nand update the docs")),
    ("mention, punctuation", "@forgebot retry!", Command("retry")),
    ("quoted reply then a command", (
        "> Could you make it use pathlib?\n"
        "\n"
        "/revise use pathlib.Path everywhere"
    ), Command("revise", "use pathlib.Path everywhere")),
    ("quoted /retry then a different command", "> /retry\n\n/cancel", Command("cancel")),
    ("nested quote then a command", "> > old\n> newer\n\n/status", Command("status")),
    ("HTML comment from a template", "<!-- Thanks for contributing! -->\n/approve",
     Command("approve")),
    ("multi-line HTML comment", "<!--\ntemplate\n/retry\n-->\n/status", Command("status")),
    ("HTML comment on the same line", "<!-- x --> /status", Command("status")),
    ("inline code in the argument is kept", "/revise call `greet()` instead",
     Command("revise", "call `greet()` instead")),
    ("argument quoted below is kept", "/revise as she said:\n> use a dict",
     Command("revise", "as she said:\n> use a dict")),
]


@pytest.mark.parametrize(("body", "expected"), [(b, e) for _, b, e in COMMANDS],
                         ids=[name for name, _, _ in COMMANDS])
def test_commands(body: str, expected: ParsedComment) -> None:
    assert parse_comment(body, BOT) == expected


# --- parse_comment: comments that are not addressed to the bot ------------------------------

NOT_COMMANDS: list[tuple[str, str]] = [
    ("empty", ""),
    ("only blank lines", "\n  \n\t\n"),
    ("plain prose", "Looks good to me, thanks!"),
    ("command later in the comment", "Thanks!\n/retry"),
    ("command mid-line", "Could you /retry this?"),
    ("quoted command", "> /retry"),
    ("quoted command with a reply after it", "> /retry\n\nI don't think that will help."),
    ("quote continued lazily", "> she wrote\n/retry"),
    ("quoted mention", "> @forgebot retry\n\nno, wait"),
    ("fenced code", "```\n/retry\n```"),
    ("fenced code with a language", "```sh\n/retry\n```"),
    ("tilde fence", "~~~\n/cancel\n~~~"),
    ("inline code", "`/retry`"),
    ("inline code with prose", "`/retry` is what you type to start again"),
    ("indented code", "    /retry"),
    ("tab-indented code", "\t/retry"),
    ("HTML comment only", "<!-- /retry -->"),
    ("unterminated HTML comment", "<!-- /retry\n/cancel"),
    ("a path", "/etc/hosts is read at start"),
    ("a path to a file", "/retry/now"),
    ("a URL", "https://example.com/retry"),
    ("slash and a digit", "/2 of the tests fail"),
    ("slash and a space", "/ retry"),
    ("mention without @", "forgebot /retry"),
    ("name without @ and without slash", "forgebot retry"),
    ("other bot", "@dependabot rebase"),
    ("other bot with a slash command", "@renovate-bot /retry"),
    ("a longer name", "@forgebot2 /retry"),
    ("a name with a suffix", "@forgebot-staging /retry"),
    ("a name with a dot", "@forgebot.example /retry"),
    ("email address", "forgebot@example.com /retry"),
    ("emoji first", "🚀 /retry"),
    ("full-width slash", "\uff0fretry"),
    ("backslash", "\\retry"),
]


@pytest.mark.parametrize("body", [b for _, b in NOT_COMMANDS],
                         ids=[name for name, _ in NOT_COMMANDS])
def test_not_addressed_to_the_bot(body: str) -> None:
    assert parse_comment(body, BOT) is None


# --- parse_comment: addressed to the bot, but not a command ---------------------------------

UNKNOWN: list[tuple[str, str, UnknownCommand]] = [
    ("a longer word", "/retrying", UnknownCommand("retrying", mentioned=False)),
    ("a prefix", "/ret", UnknownCommand("ret", mentioned=False)),
    ("another bot's command", "/build", UnknownCommand("build", mentioned=False)),
    ("a hyphenated word", "/retry-all", UnknownCommand("retry-all", mentioned=False)),
    ("lower-cased", "/LGTM", UnknownCommand("lgtm", mentioned=False)),
    ("mention with a sentence", "@forgebot thanks, this looks great",
     UnknownCommand("thanks", mentioned=True)),
    ("mention with an unknown slash word", "@forgebot /deploy",
     UnknownCommand("deploy", mentioned=True)),
    ("mention alone", "@forgebot", UnknownCommand("", mentioned=True)),
    ("mention alone with a colon", "@forgebot:", UnknownCommand("", mentioned=True)),
    ("mention then inline code", "@forgebot `/retry`", UnknownCommand("`/retry`", mentioned=True)),
    ("mention then emoji", "@forgebot 🙏", UnknownCommand("🙏", mentioned=True)),
]


@pytest.mark.parametrize(("body", "expected"), [(b, e) for _, b, e in UNKNOWN],
                         ids=[name for name, _, _ in UNKNOWN])
def test_unknown_commands(body: str, expected: UnknownCommand) -> None:
    assert parse_comment(body, BOT) == expected


@pytest.mark.parametrize("body", ["/revise", "/revise   ", "/REVISE\n\n   \n",
                                  "@forgebot revise", "/revise\r\n\r\n"])
def test_revise_without_feedback_is_bad_usage(body: str) -> None:
    result = parse_comment(body, BOT)
    assert isinstance(result, BadUsage)
    assert result.name == "revise"
    assert "/revise <feedback>" in result.message


@pytest.mark.parametrize("bot_name", ["forgebot", "@forgebot", " ForgeBot ", "forgebot[bot]"])
def test_bot_name_is_normalised(bot_name: str) -> None:
    assert parse_comment("@forgebot retry", bot_name) == Command("retry")
    assert parse_comment("@forgebot[bot] retry", bot_name) == Command("retry")


def test_bot_name_with_regex_characters_is_literal() -> None:
    assert parse_comment("@my.bot retry", "my.bot") == Command("retry")
    assert parse_comment("@myxbot retry", "my.bot") is None


def test_an_edited_comment_is_parsed_like_a_new_one() -> None:
    before = parse_comment("/retry", BOT)
    after = parse_comment("/retry\n\nedit: keep the README as is", BOT)
    assert before == Command("retry")
    assert after == Command("retry", "edit: keep the README as is")
    assert parse_comment("~~/retry~~ never mind", BOT) is None


def test_real_fixture_comment_is_an_unknown_slash_word() -> None:
    # GitHub's issue_comment__created_pr.json fixture carries "/build" for another CI bot.
    assert parse_comment("/build", BOT) == UnknownCommand("build", mentioned=False)


# --- help -----------------------------------------------------------------------------------


def test_help_lists_every_command_and_the_permission() -> None:
    text = help_text("@forgebot", minimum="maintain")
    for name in COMMAND_NAMES:
        assert f"`/{name}" in text
    assert "`@forgebot command`" in text
    assert "**maintain**" in text
    assert "@@" not in text


def test_help_is_not_itself_a_command() -> None:
    # The bot's own help comment must never read as a command if it is ever parsed.
    assert parse_comment(help_text(BOT), BOT) is None


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_usage_names_the_command(name: str) -> None:
    assert usage(name).startswith(f"`/{name}")


# --- permission_allows ----------------------------------------------------------------------

PERMISSIONS: list[tuple[str, str, bool]] = [
    ("admin", "write", True),
    ("maintain", "write", True),
    ("write", "write", True),
    ("triage", "write", False),
    ("read", "write", False),
    ("none", "write", False),
    ("none", "none", True),
    ("read", "read", True),
    ("triage", "triage", True),
    ("write", "maintain", False),
    ("maintain", "admin", False),
    ("admin", "admin", True),
    ("ADMIN", "Write", True),
    (" write ", "write", True),
    ("owner", "admin", True),  # Gitea and Forgejo
    ("", "read", False),
    ("superuser", "read", False),
    ("push", "read", False),  # GitHub's legacy boolean names are not levels
    ("", "none", False),  # an unknown answer is refused even when nothing is required
]


@pytest.mark.parametrize(("actual", "minimum", "allowed"), PERMISSIONS,
                         ids=[f"{a or 'empty'}-vs-{m}" for a, m, _ in PERMISSIONS])
def test_permission_allows(actual: str, minimum: str, allowed: bool) -> None:
    assert permission_allows(actual, minimum) is allowed


def test_permission_levels_are_ordered() -> None:
    for low, high in itertools.pairwise(PERMISSION_LEVELS):
        assert permission_allows(high, low)
        assert not permission_allows(low, high)


@pytest.mark.parametrize("minimum", ["", "push", "developer", "owners"])
def test_unknown_minimum_is_a_configuration_error(minimum: str) -> None:
    with pytest.raises(ValueError, match="unknown permission level"):
        permission_allows("admin", minimum)


# --- ReplyLimiter ---------------------------------------------------------------------------

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# (user, item, minutes after T0, expected answer), run in order on one limiter.
REPLIES: list[tuple[str, str, float, bool]] = [
    ("mallory", "acme/hello#1", 0, True),
    ("mallory", "acme/hello#1", 1, False),
    ("Mallory", "acme/hello#1", 2, False),  # logins are case-insensitive
    ("mallory", "acme/hello#2", 3, True),  # another item
    ("eve", "acme/hello#1", 4, True),  # another user
    ("mallory", "acme/hello#1", 59.9, False),
    ("mallory", "acme/hello#1", 60, True),  # an hour later
    ("mallory", "acme/hello#1", 61, False),
    ("mallory", "acme/hello#1", 30, False),  # the clock went backwards: still recent
    ("mallory", "other/repo#1", 62, True),
]


def test_reply_limiter_sequence() -> None:
    limiter = ReplyLimiter()
    answers = [limiter.allow(user, item, T0 + timedelta(minutes=minutes))
               for user, item, minutes, _ in REPLIES]
    assert answers == [expected for *_, expected in REPLIES]


def test_reply_limiter_state_round_trips() -> None:
    limiter = ReplyLimiter()
    assert limiter.allow("mallory", "acme/hello#1", T0)
    restored = ReplyLimiter(entries=limiter.entries())
    assert not restored.allow("mallory", "acme/hello#1", T0 + timedelta(minutes=5))
    assert restored.allow("mallory", "acme/hello#1", T0 + timedelta(hours=1))


def test_reply_limiter_keeps_the_latest_restored_entry() -> None:
    limiter = ReplyLimiter(entries=[("u", "i", T0), ("U", "i", T0 + timedelta(minutes=30))])
    assert limiter.entries() == [("u", "i", T0 + timedelta(minutes=30))]
    assert not limiter.allow("u", "i", T0 + timedelta(minutes=70))


def test_reply_limiter_prune_forgets_old_entries() -> None:
    limiter = ReplyLimiter()
    limiter.allow("a", "x#1", T0)
    limiter.allow("b", "x#1", T0 + timedelta(minutes=50))
    limiter.prune(T0 + timedelta(minutes=70))
    assert [user for user, _, _ in limiter.entries()] == ["b"]


def test_reply_limiter_custom_window_and_time_zones() -> None:
    limiter = ReplyLimiter(window=timedelta(minutes=10))
    assert limiter.allow("u", "i", T0)
    berlin = timezone(timedelta(hours=2))
    # 14:05 in Berlin is 12:05 UTC: five minutes later, still inside the window.
    assert not limiter.allow("u", "i", datetime(2024, 5, 1, 14, 5, tzinfo=berlin))
    assert limiter.allow("u", "i", datetime(2024, 5, 1, 14, 10, tzinfo=berlin))


def test_reply_limiter_refuses_naive_times_and_bad_windows() -> None:
    limiter = ReplyLimiter()
    with pytest.raises(ValueError, match="timezone-aware"):
        limiter.allow("u", "i", datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        ReplyLimiter(entries=[("u", "i", datetime(2024, 5, 1))])
    with pytest.raises(ValueError, match="positive"):
        ReplyLimiter(window=timedelta(0))


def test_the_docs_describe_every_command() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "commands.md").read_text()
    for name in COMMAND_NAMES:
        assert f"| `{usage(name).split('`')[1]}` |" in docs
    assert " < ".join(PERMISSION_LEVELS) in docs
