"""Convergence checks in words."""

def test_an_undefined_r_hat_says_why_and_names_the_term():
    from inference.estimators.base import convergence_note
    from models.bayes.convergence import convergence_messages

    problems = convergence_messages([("AI", float("nan"), 500.0), ("Eco", 1.0, 900.0)], 0)
    assert problems == [problems[0]] and "r_hat of AI is undefined" in problems[0]
    assert "at least two chains" in problems[0]
    assert "undefined" in convergence_note("AI", problems)
    assert "AI" in convergence_note("Eco", problems)  # a sibling's failure is named too
