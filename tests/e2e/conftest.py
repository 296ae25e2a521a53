"""End-to-end fixtures: a local forge, the real service behind a real waitress server."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from waitress.server import create_server

from bot.cli import main
from bot.config import Settings, load_settings
from bot.forges.local import admin
from bot.service import Service, build_service
from bot.store import JobView
from tests.conftest import FIXTURES, REPO, SECRET

REPO_NAME = "acme/hello"


@dataclass
class Live:
    settings: Settings
    service: Service
    url: str
    env: dict[str, str]

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    def file_issue(self, title: str, body: str = "", label: str = "forgebot") -> None:
        self.cli("local", "issue", "--repo", REPO_NAME, "--title", title, "--body", body,
                 "--label", label)

    def run_until_idle(self) -> None:
        for _ in range(20):
            self.service.dispatcher.tick()
            self.service.dispatcher.wait_idle(timeout=600)
            if self.service.store.is_idle():
                return
        raise AssertionError("the service did not become idle")

    def comments(self, number: int) -> list[str]:
        folder = self.settings.local_root / REPO_NAME / "comments"
        return [p.read_text() for p in sorted(folder.glob(f"{number}-*.md"))]

    def pulls(self) -> list[dict[str, object]]:
        return admin.list_pulls(self.settings.local_root, REPO_NAME)

    def only_job(self) -> JobView:
        [job] = self.service.store.list_jobs()
        return job

    def events(self, job_id: int, kind: str) -> list[dict[str, object]]:
        """The data of the job's events of ``kind``, in order."""
        return [e["data"] for e in self.service.store.events(job_id) if e["kind"] == kind]

    def stored(self, job_id: int) -> str:
        """Everything the bot stored or posted for the job: comments, events, transcript."""
        return " ".join([*self.comments(1), str(self.service.store.events(job_id)),
                         str(self.service.store.transcript(job_id))])


def e2e_env(data_dir: Path, transcript: Path) -> dict[str, str]:
    return {
        "FORGEBOT_DATA_DIR": str(data_dir),
        "FORGEBOT_FORGES__LOCAL__SECRET": SECRET,
        "FORGEBOT_LLM__PROVIDER": "replay",
        "FORGEBOT_LLM__TRANSCRIPT": str(transcript),
        "FORGEBOT_SCHEDULER__CONCURRENCY": "1",
    }


@pytest.fixture
def live_factory(tmp_path: Path) -> Iterator[object]:
    started: list[tuple[Service, object]] = []

    def make(transcript: Path, extra_env: dict[str, str] | None = None,
             repo_files: dict[str, str | None] | None = None) -> Live:
        """A live service over a local forge whose repository is examples/hello-service,
        with ``repo_files`` written over it (None deletes a file)."""
        env = {**e2e_env(tmp_path / "data", transcript), **(extra_env or {})}
        settings = load_settings(None, environ=env)
        source = tmp_path / "source"
        shutil.copytree(REPO / "examples" / "hello-service", source,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        for name, text in (repo_files or {}).items():
            if text is None:
                (source / name).unlink()
            else:
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                (source / name).write_text(text)
        admin.init_repo(settings.local_root, REPO_NAME, source)
        service = build_service(settings)
        service.start(schedule=False)  # the test ticks by hand
        server = create_server(service.app, host="127.0.0.1", port=0, threads=4)
        threading.Thread(target=server.run, daemon=True).start()
        url = f"http://127.0.0.1:{server.effective_port}/webhooks/local"  # type: ignore[union-attr]
        env["FORGEBOT_FORGES__LOCAL__RECEIVER_URL"] = url
        started.append((service, server))
        return Live(settings, service, url, env)

    yield make
    for service, server in started:
        server.close()  # type: ignore[attr-defined]
        service.stop()


@pytest.fixture
def obeyed(live_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run one issue through a live service whose replay model answers with ``replies``:
    ``obeyed(replies, title, body="") -> (live, job)``."""

    def run(replies: list[str], title: str, body: str = "") -> tuple[Live, JobView]:
        transcript = tmp_path / "replies.yaml"
        transcript.write_text(yaml.safe_dump(replies, allow_unicode=True))
        live = live_factory(transcript)
        live.file_issue(title, body)
        live.run_until_idle()
        return live, live.only_job()

    return run


@pytest.fixture
def transcripts() -> Path:
    return FIXTURES / "transcripts"
