"""Redaction of transcripts: the bot's own secrets and anything the scanner flags."""

from __future__ import annotations

from bot.secret_scan import REDACTED, redact


def test_known_secrets_are_replaced_longest_first() -> None:
    text = "token ghp_abc123def456 and its prefix ghp_abc123"
    out = redact(text, ["ghp_abc123", "ghp_abc123def456", "x"])
    assert "ghp_abc" not in out
    assert out.count(REDACTED) == 2
    assert "x" in out  # too short to be a secret worth redacting everywhere


def test_flagged_lines_are_replaced_by_a_note_naming_the_kind() -> None:
    key = "AKIA" + "QYLPMN5HFIQR7XYZ"
    text = f"config = 1\nAWS_ACCESS_KEY_ID = \"{key}\"\nprint(config)\n"
    out = redact(text)
    lines = out.split("\n")
    assert lines[0] == "config = 1" and lines[2] == "print(config)"
    assert key not in out
    assert lines[1].startswith("[line redacted: ") and "AWS" in lines[1]


def test_ordinary_code_is_left_alone() -> None:
    text = "def add(a, b):\n    return a + b\n"
    assert redact(text) == text


def test_the_body_of_a_private_key_goes_with_its_header() -> None:
    body = ["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
            "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK"]
    text = "\n".join(["key: |", "  -----BEGIN RSA PRIVATE KEY-----", *(f"  {b}" for b in body),
                      "  -----END RSA PRIVATE KEY-----", "port: 22"])
    out = redact(text).split("\n")
    assert out[0] == "key: |" and out[-1] == "port: 22"
    assert all(line.startswith("[line redacted") for line in out[1:-1])
    # Without an END line, the redaction stops at the first line that is not base64.
    cut = redact("-----BEGIN OPENSSH PRIVATE KEY-----\n" + body[0] + "\nname = 'x'\n")
    assert cut.split("\n")[2] == "name = 'x'"


def test_the_bots_secrets_are_values_not_the_names_of_secrets() -> None:
    from bot.config import load_settings
    from bot.pipeline.attempt import known_secrets

    settings = load_settings(None, environ={
        "FORGEBOT_WEB__API_TOKEN": "tasks-api-token-0123456789",
        "FORGEBOT_WEB__API_TOKEN_NAME": "client",
        "FORGEBOT_FORGES__GITEA__TOKEN": "gitea-token-abcdef0123"})

    found = known_secrets(settings)

    assert "tasks-api-token-0123456789" in found and "gitea-token-abcdef0123" in found
    assert "client" not in found
    assert "the client calls bot/client.py" in redact("the client calls bot/client.py", found)
