"""The model file: JSON, optionally zstd-compressed, with a schema version and a sha256 digest.

    {"format": "kubesentinel-ai-model", "schema_version": 1,
     "sha256": "<hex of the canonical JSON of model>", "model": {...}}

Canonical JSON: keys sorted, no spaces, UTF-8. A path ending in ``.zst`` is written and read
compressed (a compressed file is recognised by its magic number whatever its name). Loading
checks, in order: not a pickle (by name: ``.pkl``, ``.pickle``, ``.pck``, ``.joblib``, and by
content), the format and schema version, the digest. Pickles are refused because loading one
runs code; this format holds only data.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from kubesentinel.errors import ModelError

if TYPE_CHECKING:
    from kubesentinel.ai.analyzer import Analyzer

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "load_analyzer",
    "load_model",
    "save_analyzer",
    "save_model",
]

FORMAT: Final = "kubesentinel-ai-model"
SCHEMA_VERSION: Final = 2
PICKLE_SUFFIXES: Final = (".pkl", ".pickle", ".pck", ".joblib")
MAX_MODEL_BYTES: Final = 1 << 30  # decompressed; a model is a few MiB
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_HINT: Final = "train one with `kubesentinel ai train --events ... --model model.json.zst`"


def _canonical(model: dict[str, Any]) -> bytes:
    return json.dumps(model, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def refuse_pickle(path: Path) -> None:
    name = path.name.lower().removesuffix(".zst")
    if name.endswith(PICKLE_SUFFIXES):
        raise ModelError(
            f"refusing {path}: a pickle runs code when it is loaded, so KubeSentinel never "
            "reads or writes one",
            hint="point ai.model_path (or --model) at a .json or .json.zst file; " + _HINT,
        )


def save_model(model: dict[str, Any], path: Path) -> None:
    """Write atomically (a temporary file renamed over ``path``)."""
    refuse_pickle(path)
    body = _canonical(model)
    doc = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "sha256": hashlib.sha256(body).hexdigest(),
        "model": model,
    }
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    if path.name.endswith(".zst"):
        data = _zstd().compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model(path: Path) -> dict[str, Any]:
    """The model's state, verified; ModelError saying what is wrong otherwise."""
    refuse_pickle(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror}", hint=_HINT) from None
    if data.startswith(_ZSTD_MAGIC):
        zstd = _zstd()
        try:
            data = zstd.ZstdDecompressor().decompress(data, max_length=MAX_MODEL_BYTES)
        except zstd.ZstdError as exc:
            raise ModelError(f"model {path} is damaged: zstd says {exc}") from None
    if data[:1] == b"\x80":
        raise ModelError(f"refusing {path}: it holds a pickle, which runs code when loaded")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"model {path} is not JSON ({exc})", hint=_HINT) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"{path} is not a KubeSentinel model", hint=_HINT)
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelError(
            f"model {path} has schema version {version!r}; this KubeSentinel reads "
            f"version {SCHEMA_VERSION}",
            hint="retrain the model with this version",
        )
    model = doc.get("model")
    digest = doc.get("sha256")
    if not isinstance(model, dict) or not isinstance(digest, str):
        raise ModelError(f"model {path} lacks its model or its sha256 digest", hint=_HINT)
    if hashlib.sha256(_canonical(model)).hexdigest() != digest:
        raise ModelError(
            f"model {path} does not match its sha256 digest: it was changed after it was "
            "written (tampering or damage)",
            hint="retrain, or restore the model from a trusted copy",
        )
    return model


def _zstd() -> ModuleType:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from backports import zstd  # type: ignore[no-redef,import-not-found,unused-ignore]
    return zstd  # type: ignore[no-any-return,unused-ignore]


def save_analyzer(analyzer: Analyzer, path: Path, meta: dict[str, Any] | None = None) -> None:
    save_model({"meta": meta or {}, "analyzer": analyzer.to_state()}, path)


def load_analyzer(path: Path, threshold: float | None = None) -> Analyzer:
    """The analyzer a model file holds, with ``threshold`` (else the one it was trained
    with); ModelError when the file is not a usable model."""
    from kubesentinel.ai.analyzer import Analyzer

    model = load_model(path)
    try:
        return Analyzer.from_state(model["analyzer"], threshold=threshold)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ModelError(
            f"model {path} is malformed ({type(exc).__name__}: {exc})", hint=_HINT
        ) from None
