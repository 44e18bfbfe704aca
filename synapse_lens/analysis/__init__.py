"""Understanding a model from its [CLS] activations: linear probes, neuron rankings (probe,
probeless, attribution), their stability, redundancy and faithfulness. Reads activations; never
intervenes except through :mod:`synapse_lens.runtime` for the causal (attribution) rankings."""
