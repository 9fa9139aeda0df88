"""The value of a run: how much it lowers the target's expected regret, in loss and in target
compute.

The target's expected regret of going with the posterior mean optimum is, to second order,
1/2 tr(H Sigma): H the target bowl's curvature (averaged over draws, the lr skew left out),
Sigma the posterior covariance of the target's log optimum (:func:`problem.target_cov`). A
run's value is the drop of that figure from before its outcome to the expected posterior
after it. In compute: the extra FLOPs on the target, spent on more tokens at its size, that
would lower its optimal loss as much under the fitted loss law
(its local slope s = d log L* / d log D at the target, :func:`core.loss_slope_d`):
6 N D (exp(dL / (-s L*)) - 1). A run is worth running when
that exceeds its own cost.
"""

from __future__ import annotations

import numpy as np

from bayes_scaling.design.problem import Problem


def expected_regret(p: Problem, w: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Expected regret (loss units) of the posterior mean choice when the target's optimum
    has covariance ``cov`` (..., k, k), under draw weights ``w`` (S,)."""
    h = np.einsum("s,sij->ij", w, p.t_h)
    return 0.5 * np.einsum("ij,...ji->...", h, cov)


def regret_pct(p: Problem, w: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """:func:`expected_regret` in % of the target's optimal loss."""
    return 100.0 * expected_regret(p, w, cov) / float(w @ p.t_loss)


def compute_equivalent(p: Problem, w: np.ndarray, loss_drop: np.ndarray) -> np.ndarray:
    """Target FLOPs (more tokens at its size) that buy ``loss_drop`` (loss units) under the
    fitted loss law; NaN where the law does not fall with tokens there (s >= 0)."""
    slope = float(w @ p.t_slope_d)
    if slope >= 0:
        return np.full(np.shape(loss_drop), np.nan)
    extra_log_tokens = np.asarray(loss_drop) / (-slope * float(w @ p.t_loss))
    return p.t_flops * np.expm1(np.maximum(extra_log_tokens, 0.0))


def value(p: Problem, w: np.ndarray, before: np.ndarray, after: np.ndarray
          ) -> dict[str, float]:
    """Regret before and after (%), the value (loss units and %) and its target-FLOP
    equivalent for one candidate with expected posterior covariance ``after``."""
    r0, r1 = expected_regret(p, w, before), expected_regret(p, w, after)
    scale = 100.0 / float(w @ p.t_loss)
    drop = float(r0 - r1)
    return {"regret_before_pct": float(r0) * scale, "regret_after_pct": float(r1) * scale,
            "value_pct": drop * scale, "value_flops": float(compute_equivalent(p, w, drop))}
