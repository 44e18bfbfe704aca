"""Running the model fast: shared batching, the plain HF copy of a bridge that still fires our
hooks (:mod:`~synapse_lens.runtime.plain`), resuming a forward pass from a cached clean residual
(:mod:`~synapse_lens.runtime.resume`) and scheduling many interventions over one dataset
(:mod:`~synapse_lens.runtime.scheduler`). Below :mod:`synapse_lens.activations`; knows nothing of
rankings or experiments."""
