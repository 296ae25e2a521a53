"""Credentials on GitHub requests: the token of the repository a request is about, or one
token for a request whose path names no repository (GraphQL). Neither object shows its
token in a ``repr``."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from bot.errors import ForgeError

TokenSource = Callable[[str], str]
"""``owner/name`` → the token to send for that repository."""

_REPO_IN_PATH = re.compile(r"/repos/([^/]+)/([^/]+)(?:/|$)")


class RepoTokenAuth(requests.auth.AuthBase):
    """Sends the token of the repository a request is about (``/repos/{owner}/{name}/...``).

    ``on_unauthorized(repo)`` runs when GitHub answers 401, so a revoked or clock-skewed
    token is dropped and the next request fetches a new one.
    """

    def __init__(
        self, tokens: TokenSource, on_unauthorized: Callable[[str], None] | None = None
    ) -> None:
        self._tokens = tokens
        self._on_unauthorized = on_unauthorized

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        match = _REPO_IN_PATH.search(urlsplit(request.url or "").path)
        if match is None:
            raise ForgeError(f"no repository in the GitHub API path of {request.method} request")
        repo = f"{match.group(1)}/{match.group(2)}"
        request.headers["Authorization"] = f"Bearer {self._tokens(repo)}"
        if self._on_unauthorized is not None:
            request.hooks.setdefault("response", []).append(self._unauthorized_hook(repo))
        return request

    def _unauthorized_hook(self, repo: str) -> Callable[..., None]:
        def hook(response: requests.Response, *args: object, **kwargs: object) -> None:
            if response.status_code == 401 and self._on_unauthorized is not None:
                self._on_unauthorized(repo)

        return hook

    def __repr__(self) -> str:
        return "RepoTokenAuth(***)"


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>`` for one request: the App's own calls, and GraphQL,
    whose path names no repository."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"
