"""Embedders: the hashing one is deterministic and keyword-true; MiniLM matches the reference."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.agent.retrieval.embedders import (
    EMBEDDER_NAMES,
    HashingEmbedder,
    build_embedder,
    identifier_terms,
)
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

TEXTS = ["def parse_args(argv):\n    return ArgParser(argv)", "class HTTPError(Exception): ...",
         "the weather is lovely", ""]


@pytest.mark.parametrize(("text", "terms"), [
    ("parse_args", ["parseargs", "parse", "args"]),
    ("HTTPError", ["httperror", "http", "error"]),
    ("getHTTPResponseCode", ["gethttpresponsecode", "get", "http", "response", "code"]),
    ("x = 42", ["x"]),
    ("plain words", ["plain", "words"]),
    ("__init__", ["init"]),
    ("", []),
])
def test_identifier_terms(text: str, terms: list[str]) -> None:
    assert identifier_terms(text) == terms


def test_hashing_is_deterministic_across_processes() -> None:
    here = HashingEmbedder().embed(TEXTS)
    code = ("import sys, numpy as np; from bot.agent.retrieval.embedders import HashingEmbedder;"
            "np.save(sys.stdout.buffer, HashingEmbedder().embed(" + repr(TEXTS) + "))")
    # A different string-hash seed: the buckets must not depend on Python's hash().
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                         cwd=REPO, env={**os.environ, "PYTHONHASHSEED": "123"})
    there = np.load(io.BytesIO(out.stdout))
    assert np.array_equal(here, there)


def test_hashing_vectors_are_unit_length_and_zero_for_nothing() -> None:
    vectors = HashingEmbedder().embed(TEXTS)
    assert vectors.shape == (4, HashingEmbedder().dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0)
    assert not vectors[3].any()


def test_hashing_ranks_shared_identifiers_first() -> None:
    docs = ["def retry_request(session): backoff and retry", "def render_template(name): html",
            "class RetryPolicy: max_retries = 3"]
    vectors = HashingEmbedder().embed(docs)
    query = HashingEmbedder().embed(["retry the request"])[0]
    assert int(np.argmax(vectors @ query)) == 0
    assert float(vectors[1] @ query) < float(vectors[2] @ query)


def test_unknown_embedder_names_the_choices() -> None:
    assert EMBEDDER_NAMES == ("hashing", "minilm")
    with pytest.raises(ConfigError, match="hashing, minilm"):
        build_embedder("word2vec")


def test_minilm_matches_reference_and_ranks_meaning() -> None:
    minilm = build_embedder("minilm")
    assert minilm.dimension == 384
    sentences = ["The weather is lovely today.", "It's so sunny outside!",
                 "He drove to the stadium."]
    vectors = minilm.embed(sentences)
    # sentence-transformers' published similarities for all-MiniLM-L6-v2 on these sentences.
    assert np.allclose(vectors @ vectors.T, [[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411],
                                             [0.1046, 0.1411, 1.0]], atol=5e-4)
    # First dimensions of the embedding Hugging Face transformers (BertModel, mean pooling,
    # normalised) computes for the first sentence.
    assert np.allclose(vectors[0][:8], [0.0192, 0.12009, 0.1596, 0.06707, 0.05007, -0.02592,
                                        0.05647, -0.09286], atol=1e-4)
    code = minilm.embed(["def send_email(to, subject, body):\n    smtp.sendmail(to, body)",
                         "def resize_image(img, width):\n    return img.scale(width)"])
    query = minilm.embed(["deliver a message to a user's mailbox"])[0]
    assert float(code[0] @ query) > float(code[1] @ query) + 0.1
    # Batching and padding do not change a text's vector.
    assert np.allclose(minilm.embed([sentences[2]])[0], vectors[2], atol=1e-5)
