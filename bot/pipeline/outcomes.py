"""The named outcomes every job ends in; the reporter switches on them."""

from __future__ import annotations

from enum import StrEnum

from bot.errors import ForgebotError


class Outcome(StrEnum):
    SUBMITTED = "submitted"  # pull request opened, tests pass
    TESTS_FAILED = "tests_failed"  # draft pull request opened, tests fail
    UNPROVEN = "unproven"  # draft pull request opened: tests pass, but none fails without it
    NO_CHANGES = "no_changes"  # the model changed nothing usable
    MODEL_REPEATS = "model_repeats"  # the model kept giving a reply it had given before
    POLICY_BLOCKED = "policy_blocked"  # the policy gate stopped the change
    SECRET_FOUND = "secret_found"  # noqa: S105 - the secret gate stopped the change
    BUDGET_EXCEEDED = "budget_exceeded"  # iteration or time budget used up
    CONTEXT_TOO_SMALL = "context_too_small"  # the model's window cannot hold the minimum prompt
    SANDBOX_ERROR = "sandbox_error"  # the sandbox could not run
    MODEL_ERROR = "model_error"  # the model could not be loaded or reached
    FORGE_ERROR = "forge_error"  # the forge or git refused
    WORKER_LOST = "worker_lost"  # the worker died too many times
    INTERNAL_ERROR = "internal_error"  # a bug in forgebot; the log has the traceback
    CONFIG_ERROR = "config_error"  # the repository's .forgebot.yml does not load
    NO_TOOLCHAIN = "no_toolchain"  # nothing says how to test the repository
    SETUP_FAILED = "setup_failed"  # installing the repository's dependencies failed
    CANCELLED = "cancelled"
    TAKEN_OVER = "taken_over"  # a person pushed to the bot's branch: the bot leaves it alone
    AWAITING_APPROVAL = "awaiting_approval"  # the plan is posted; /approve goes on

    @property
    def failed(self) -> bool:
        """True when the job did not publish a pull request (and is not waiting for a
        person's approval of its plan, which is no failure)."""
        return self not in (Outcome.SUBMITTED, Outcome.TESTS_FAILED, Outcome.UNPROVEN,
                            Outcome.AWAITING_APPROVAL)


class JobStopped(ForgebotError):
    """A stage ends the job early with a named outcome and a message for the issue."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
