"""Convergence checks in words."""

def test_an_undefined_r_hat_says_why_and_names_the_term():
    from inference.estimators.base import convergence_note
    from models.bayes.convergence import convergence_messages

    problems = convergence_messages([("AI", float("nan"), 500.0), ("Eco", 1.0, 900.0)], 0)
    assert problems == [problems[0]] and "r_hat of AI is undefined" in problems[0]
    assert "at least two chains" in problems[0]
    assert "undefined" in convergence_note("AI", problems)
    assert "AI" in convergence_note("Eco", problems)  # a sibling's failure is named too


def test_a_chain_with_low_energy_fraction_fails_in_words():
    import arviz as az
    import numpy as np

    from models.bayes.convergence import ConvergenceChecked

    rng = np.random.default_rng(0)
    # Chain 0: independent energies (E-BFMI near 2); chain 1: a slow random walk (near 0).
    energy = np.stack([rng.normal(size=1000), np.cumsum(rng.normal(scale=0.05, size=1000))])

    class Fit(ConvergenceChecked):
        idata = az.from_dict(sample_stats={"energy": energy})
        divergences = 0

        def convergence_rows(self):
            return [("AI", 1.0, 1000.0)]

    fit = Fit()
    values = fit.bfmi()
    assert values[0] > 1.5 and values[1] < 0.05
    assert np.allclose(values, az.bfmi(energy))
    problems = fit.convergence_problems()
    assert len(problems) == 1 and "E-BFMI below 0.3 (chain 1" in problems[0]
