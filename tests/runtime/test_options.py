"""ExecOptions: one object for how the model runs, checked on construction, passed whole."""

from __future__ import annotations

import pytest

from synapse_lens import ExecOptions
from synapse_lens.runtime.options import resolve


def test_defaults_validation_and_quiet() -> None:
    assert ExecOptions() == ExecOptions(batch_size=32, max_length=128, progress=True,
                                        engine="fast")
    assert ExecOptions().fast and not ExecOptions(engine="full").fast
    assert ExecOptions(batch_size=4).quiet() == ExecOptions(batch_size=4, progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        ExecOptions(batch_size=0)
    with pytest.raises(ValueError, match="max_length must be an int >= 2, got 1"):
        ExecOptions(max_length=1)
    # values of the wrong type: the test run's type checker (jaxtyping + beartype) refuses them
    # first, so the checks a user meets are run on an object built without __init__
    for field, value, message in (("batch_size", True, "batch_size must be a positive int"),
                                  ("engine", "bridge", "engine must be 'fast' or 'full'")):
        bad = object.__new__(ExecOptions)
        for name, default in (("batch_size", 32), ("max_length", 128), ("progress", True),
                              ("engine", "fast")):
            object.__setattr__(bad, name, value if name == field else default)
        with pytest.raises(ValueError, match=message):
            bad.__post_init__()


def test_resolve_gives_defaults_and_refuses_other_objects() -> None:
    assert resolve(None) == ExecOptions()
    assert resolve(None, progress=False) == ExecOptions(progress=False)
    mine = ExecOptions(batch_size=8)
    assert resolve(mine) is mine
    unchecked = getattr(resolve, "__wrapped__", resolve)  # without the test-time type checker
    with pytest.raises(TypeError, match="options must be an ExecOptions, got dict"):
        unchecked({"batch_size": 8})
