"""bayes_scaling: Bayesian scaling laws for the optimal learning rate, batch size and weight
decay of LLM pretraining, with partial pooling across architectures and data mixes."""

__version__ = "0.1.0"
