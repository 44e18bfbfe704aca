"""How a dataset is run through the model: one small frozen object passed whole from the entry
point down to the forward passes (:class:`ExecOptions`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

Engine = Literal["fast", "full"]


@dataclass(frozen=True)
class ExecOptions:
    """Execution settings of every function that runs the model over a dataset.

    Attributes:
        batch_size: texts per forward pass (texts are grouped by length; order is restored).
        max_length: longest token sequence; longer texts are truncated.
        progress: show tqdm progress bars.
        engine: ``"fast"`` (default) resumes each condition from the cached clean residual
            stream where it can and runs the plain HF copy of the model where the hooks allow
            (same numbers, :mod:`synapse_lens.runtime`); ``"full"`` runs every forward pass in
            full through the TransformerLens model — the reference the fast engine is tested
            against.

    Raises:
        ValueError: a batch size below 1, a max length below 2, an unknown engine.

    Example:
        >>> ExecOptions(batch_size=16, progress=False)
        ExecOptions(batch_size=16, max_length=128, progress=False, engine='fast')
        >>> ExecOptions(engine="full").quiet().progress
        False
    """

    batch_size: int = 32
    max_length: int = 128
    progress: bool = True
    engine: Engine = "fast"

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) \
                or self.max_length < 2:
            raise ValueError(f"max_length must be an int >= 2, got {self.max_length!r}")
        if self.engine not in ("fast", "full"):
            raise ValueError(f"engine must be 'fast' or 'full', got {self.engine!r}")

    @property
    def fast(self) -> bool:
        """Whether the fast engine runs (``engine == "fast"``)."""
        return self.engine == "fast"

    def quiet(self) -> ExecOptions:
        """The same options without progress bars (for passes nested inside a bar)."""
        return dataclasses.replace(self, progress=False)


def resolve(options: ExecOptions | None, *, progress: bool = True) -> ExecOptions:
    """``options``, or the defaults (with ``progress``) when None.

    Raises:
        TypeError: ``options`` is neither None nor an :class:`ExecOptions`.
    """
    if options is None:
        return ExecOptions(progress=progress)
    if not isinstance(options, ExecOptions):
        raise TypeError(f"options must be an ExecOptions, got {type(options).__name__} "
                        "(e.g. ExecOptions(batch_size=16, max_length=64))")
    return options
