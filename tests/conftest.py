"""Shared fixtures: settings in a temporary folder, a migrated store, signed local webhooks."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load_settings
from bot.forges.verify import sign_sha256
from bot.store import Store, open_store

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SECRET = "test-webhook-secret"


def with_local_repo(settings: Settings) -> Settings:
    """Create acme/hello on the settings' local forge: the repository the payloads name."""
    from bot.forges.local import admin

    admin.init_repo(settings.local_root, "acme/hello", REPO / "examples" / "hello-service")
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return with_local_repo(load_settings(None, environ={
        "FORGEBOT_DATA_DIR": str(tmp_path / "data"),
        "FORGEBOT_FORGES__LOCAL__SECRET": SECRET,
        "FORGEBOT_LLM__PROVIDER": "replay",
        "FORGEBOT_LLM__TRANSCRIPT": str(FIXTURES / "transcripts" / "add_farewell.yaml"),
    }))


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings.store_url)


def signed(event: str, payload: dict[str, Any], *, secret: str = SECRET,
           delivery: str | None = None) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Forgebot-Event": event,
        "X-Forgebot-Delivery": delivery or str(uuid.uuid4()),
        "X-Forgebot-Signature-256": "sha256=" + sign_sha256(secret, body),
    }
    return headers, body


def labeled_payload(
    number: int = 1, label: str = "forgebot", repo: str = "acme/hello"
) -> dict[str, Any]:
    return {
        "action": "labeled",
        "repository": {"full_name": repo, "default_branch": "main"},
        "issue": {"number": number, "title": "Add a farewell", "body": "Please.",
                  "labels": [{"name": label}], "user": {"login": "ada"}},
        "label": {"name": label},
        "sender": {"login": "ada"},
    }
