"""Measuring what interventions do: one engine that runs a list of conditions against the clean
run (:mod:`~synapse_lens.experiments.engine`), the grids fitted to the model, and the named
experiments built on it: ablation and noise sweeps, class-wise matrices, redirection,
self-repair, targeted redirection (vulnerability) and the whole stress suite
(:mod:`~synapse_lens.experiments.suite`)."""
