"""The whole SYNAPSE run: its settings (:mod:`~synapse_lens.pipeline.config`), the run itself
(:mod:`~synapse_lens.pipeline.run`: :func:`~synapse_lens.pipeline.run.run_synapse` writes a run
directory) and the handle it returns (:mod:`~synapse_lens.pipeline.result`). Imports nothing
heavy: ``synapse-lens --help`` reads the defaults from the config without loading torch."""
