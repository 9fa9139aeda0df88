"""The package's exceptions: one hierarchy rooted at :class:`BayesScalingError`.

Each is a user error (bad file, spec, target, candidate table or posterior): the CLI prints
its message as one ``error:`` line and exits 2. Kept free of heavy imports for the CLI.
"""


class BayesScalingError(ValueError):
    """Root of every user error raised by bayes_scaling."""


class SweepError(BayesScalingError):
    """A sweep that cannot be used; the message names the file, the row(s) and the column."""


class SpecError(BayesScalingError):
    """A model spec that cannot be used; the message names the file and the key."""


class PosteriorError(BayesScalingError):
    """A saved posterior that cannot be used (missing, wrong format or spec, altered)."""


class TargetError(BayesScalingError):
    """A target the posterior cannot predict (e.g. an arch it has never seen)."""


class CandidateError(BayesScalingError):
    """A candidate table that cannot be scored; the message names the column and rows."""


class BayesScalingWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one
    ``warning:`` line)."""


class PosteriorWarning(BayesScalingWarning):
    """Results drawn from a posterior that failed its sampling diagnostics."""
