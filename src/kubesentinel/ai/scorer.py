"""How the monitor scores its events: one small interface, in-process or through a service.

- ``Scorer``: ``score_batch(events) -> list[Scored]`` (one per event, in order) and ``close()``.
- ``LocalScorer``: the analyzer of a model file, in the monitor's own process (the default).
  It keeps learning behind the poisoning guard, and takes incident holds (``Holds``).
- ``RemoteScorer`` (``ai/remote.py``): the gRPC service at ``ai.endpoint``; imported only when
  an endpoint is set.

``open_scorer`` picks one. Which model, in order:

1. ``model`` (``monitor --model``): in-process; a file that is not a usable model is an error
   (ModelError, exit 2).
2. ``ai.endpoint`` when not empty: the service.
3. ``ai.model_path``: in-process when it names a model file that exists. The shipped default
   (a ``.pkl`` path, which is never loaded), an empty value or a path with no file yet means
   scoring is off,
   said once in the log; a file that exists but is damaged, tampered or a pickle is an error,
   since running without the model an operator configured would hide it.

Learned state is not written back by default: a monitor that saved on exit would carry a
poisoning that slipped past the guard into every later run. ``save_to`` (``monitor
--save-model PATH``) writes it on close, atomically, for an operator who wants that.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kubesentinel.ai.modelfile import PICKLE_SUFFIXES, load_analyzer, refuse_pickle, save_analyzer
from kubesentinel.errors import AIError, ConfigError
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.event import Event

if TYPE_CHECKING:
    from kubesentinel.ai.analyzer import Analyzer
    from kubesentinel.config import Config

__all__ = ["Holds", "LocalScorer", "Scorer", "open_scorer"]

log = logging.getLogger("kubesentinel.ai")


@runtime_checkable
class Scorer(Protocol):
    def score_batch(self, events: Sequence[Event]) -> list[Scored]:
        """One Scored per event, in order."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Holds(Protocol):
    """A scorer that learns, told what not to learn from: an incident's span. It learns a
    batch only at ``settle``, once the incidents the batch touched are held."""

    def hold(self, workload: str, start_ns: int, end_ns: int) -> None: ...

    def settle(self) -> None: ...

    @property
    def learned_events(self) -> int:
        """Events learned since the scorer opened (settled, outside every hold)."""
        ...

    @property
    def held_events(self) -> int:
        """Events a hold kept from being learned."""
        ...


class LocalScorer:
    """The analyzer, in this process. Not thread-safe: the pipeline thread alone calls it."""

    def __init__(self, analyzer: Analyzer, *, save_to: Path | None = None) -> None:
        self.analyzer = analyzer
        self.save_to = save_to

    @classmethod
    def from_file(
        cls, path: Path, *, threshold: float | None = None, save_to: Path | None = None
    ) -> LocalScorer:
        return cls(load_analyzer(path, threshold), save_to=save_to)

    def score_batch(self, events: Sequence[Event]) -> list[Scored]:
        return self.analyzer.score_batch(events, defer=True)

    def hold(self, workload: str, start_ns: int, end_ns: int) -> None:
        self.analyzer.hold(workload, start_ns, end_ns)

    def settle(self) -> None:
        self.analyzer.learn_deferred()

    @property
    def learned_events(self) -> int:
        return self.analyzer.learned_events

    @property
    def held_events(self) -> int:
        return self.analyzer.held_events

    def close(self) -> None:
        self.analyzer.learn_deferred()
        if self.save_to is not None:
            save_analyzer(self.analyzer, self.save_to, {"continued_by": "monitor"})


def open_scorer(
    config: Config, *, model: str | None = None, save_to: str | None = None
) -> Scorer | None:
    """The scorer the options and ``config.ai`` name, or None: scoring off (logged once)."""
    threshold = config.ai.threshold
    save = Path(save_to) if save_to else None
    if save is not None:  # refused before anything runs, whichever model is chosen
        refuse_pickle(save)
    if model:
        return LocalScorer.from_file(Path(model), threshold=threshold, save_to=save)
    endpoint = config.ai.endpoint.strip()
    if endpoint:
        if save is not None:
            raise AIError(
                "--save-model saves an in-process model; with ai.endpoint the service keeps it",
                hint="give --model PATH to score in-process, or leave out --save-model",
            )
        return _remote(endpoint, config)
    if not config.ai.model_path.strip():
        log.info("anomaly scoring off: ai.model_path is empty")
        return None
    path = Path(config.ai.model_path)
    if path.name.lower().removesuffix(".zst").endswith(PICKLE_SUFFIXES):
        log.info(
            "anomaly scoring off: ai.model_path %s names a pickle, which KubeSentinel never "
            "loads; train a model (`kubesentinel ai train --events ... --model model.json.zst`) "
            "and set ai.model_path or --model",
            config.ai.model_path,
        )
        return None
    if not path.exists():
        log.info(
            "anomaly scoring off: no model at ai.model_path %s (`kubesentinel ai train` "
            "writes one)",
            config.ai.model_path,
        )
        return None
    return LocalScorer.from_file(path, threshold=threshold, save_to=save)


def _remote(endpoint: str, config: Config) -> Scorer:
    # Imported here: grpc loads only for a monitor that uses the service (without grpcio
    # installed, RemoteScorer says which extra to install).
    from kubesentinel.ai.remote import RemoteScorer

    ai = config.ai
    # Checked here, where the monitor starts: these files exist where it runs, not where the
    # same config drives a scan. A certificate without its key: RemoteScorer says so first.
    paired = bool(ai.tls_cert) == bool(ai.tls_key)
    for key, given in (("tls_ca", ai.tls_ca), ("tls_cert", ai.tls_cert), ("tls_key", ai.tls_key)):
        if paired and given and not Path(given).is_file():
            raise ConfigError(
                f"ai.{key}: no such file: {given}",
                file=config.source,
                hint="relative paths are read from the config file's directory",
            )
    scorer: Scorer = RemoteScorer(
        endpoint,
        tls_ca=ai.tls_ca or None,
        tls_cert=ai.tls_cert or None,
        tls_key=ai.tls_key or None,
    )
    log.info("anomaly scoring through the analyzer service at %s", endpoint)
    return scorer
