"""Reports sent without waiting may arrive out of order: one that overtook a later report of its
run is dropped, runs are kept apart, and only the newest runs are remembered."""

from __future__ import annotations

from sweedle_core.jobs.report_order import ReportOrder


def test_a_report_that_overtook_a_later_one_is_dropped():
    order = ReportOrder()
    assert [order.is_next("a", seq) for seq in (1, 3, 2, 4, 4)] == [
        True,
        True,
        False,
        True,
        False,
    ]


def test_runs_are_numbered_apart():
    order = ReportOrder()
    assert order.is_next("a", 5)
    assert order.is_next("b", 1)  # another export's first report is not behind the first's
    assert not order.is_next("a", 2)


def test_only_the_newest_runs_are_remembered():
    order = ReportOrder(kept=2)
    for run in ("a", "b", "c"):
        assert order.is_next(run, 7)
    assert order.is_next("a", 1)  # forgotten: a run this old is over long since
    assert not order.is_next("c", 7)
