from evaluation.labelled import evaluate_febrl


def test_febrl4_through_pseudonyms_meets_goal():
    m = evaluate_febrl("febrl4")
    assert m.f1 >= 0.999, m.line()
    assert m.true_pairs == 5000
    assert m.line().startswith(f"precision={m.precision:.4f} recall=")
