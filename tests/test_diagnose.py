"""Sampling diagnostics are reported plainly: counts match the lists, numbers are readable."""

import re

import numpy as np

from bayes_scaling.model.fit import LAW_PARAMETERS, diagnose


def test_bad_chains_are_counted_listed_and_rounded(fake_post):
    bad = fake_post.copy()
    post = bad["posterior"].to_dataset()
    bad["posterior"] = post + post["chain"] * 1.0  # chain 1 moved away from chain 0
    energy = np.cumsum(np.random.default_rng(0).standard_normal(
        bad["sample_stats"]["energy"].shape), axis=-1)  # a random walk: E-BFMI far below 0.3
    stats = bad["sample_stats"].to_dataset()
    stats["energy"] = (stats["energy"].dims, energy)
    bad["sample_stats"] = stats
    d = diagnose(bad)
    assert not d.ok
    rhat = next(p for p in d.problems if p.startswith("R-hat"))
    n = int(re.search(r"for (\d+) parameter", rhat).group(1))
    assert n > 8 and "the first 8:" in rhat and len(rhat.split(": ", 1)[1].split("; ")) == 8
    assert n == int((d.summary["r_hat"] > 1.01).sum())
    ebfmi = next(p for p in d.problems if p.startswith("E-BFMI"))
    assert re.fullmatch(r"E-BFMI below 0\.3 in 2 chain\(s\): \d\.\d\d, \d\.\d\d", ebfmi)
    assert {"a_n", "noise"} <= set(LAW_PARAMETERS)
