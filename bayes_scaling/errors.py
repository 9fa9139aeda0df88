"""Exception types shared by the package (kept free of heavy imports for the CLI)."""


class PosteriorError(ValueError):
    """A saved posterior that cannot be used (missing, wrong format or spec)."""
