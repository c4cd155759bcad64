"""Time to quality and "still improving" from a cell's curves (ganbench.convergence)."""

import math

import pandas as pd
import pytest

from ganbench.convergence import convergence_columns, still_improving, time_to_quality
from ganbench.tables import summarize
from ganbench.views import summary_view


def curves(fids, every=100, s_per_step=0.5, gflop_per_step=2.0, metric="fid"):
    """FID points every ``every`` steps; wall_s and train_gflop at every 50 steps."""
    rows = []
    last = every * len(fids)
    for step in range(50, last + 1, 50):
        rows += [(step, "wall_s", step * s_per_step), (step, "train_gflop", step * gflop_per_step)]
    rows += [(every * (i + 1), metric, f) for i, f in enumerate(fids)]
    return rows


def test_time_to_quality_is_the_budget_at_the_first_point_under_the_threshold():
    # floor 4: 5x = 20 first reached at step 300, 2x = 8 at step 500
    out = time_to_quality(curves([100, 40, 19, 12, 7, 9]), "fid", floor=4.0)
    assert out["s_to_5x_floor"] == 150.0 and out["gflop_to_5x_floor"] == 600.0
    assert out["s_to_2x_floor"] == 250.0 and out["gflop_to_2x_floor"] == 1000.0


def test_time_to_quality_not_reached_is_nan():
    out = time_to_quality(curves([100, 40, 30]), "fid", floor=4.0)
    assert all(math.isnan(v) for v in out.values()) and len(out) == 4
    # no floor (a dataset without FID) or no curve: NaN, never a made-up number
    assert all(math.isnan(v) for v in time_to_quality(curves([1.0]), "fid", math.nan).values())
    assert all(math.isnan(v) for v in time_to_quality([], "fid", 4.0).values())


def test_time_to_quality_interpolates_between_log_points():
    # FID point at step 100, budgets logged at 60 and 120 only
    rows = [(60, "wall_s", 30.0), (120, "wall_s", 90.0), (100, "fid", 1.0)]
    rows += [(60, "train_gflop", 6.0), (120, "train_gflop", 12.0)]
    out = time_to_quality(rows, "fid", floor=1.0)
    assert out["s_to_2x_floor"] == pytest.approx(70.0)
    assert out["gflop_to_2x_floor"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    "fids, improving, drop",
    [
        ([100, 50, 40, 30], True, 0.25),  # 3/4 of 400 = step 300 (40) -> 30
        ([100, 50, 40, 39], False, 0.025),  # fell by 2.5% < 5%
        ([100, 50, 40, 45], False, -0.125),  # got worse
    ],
)
def test_still_improving_compares_the_last_quarter(fids, improving, drop):
    out = still_improving(curves(fids), "fid")
    assert out["still_improving"] is improving
    assert out["fid_drop_last_quarter"] == pytest.approx(drop)


def test_still_improving_needs_two_points():
    out = still_improving(curves([30]), "fid")
    assert out["still_improving"] is None and math.isnan(out["fid_drop_last_quarter"])


def test_convergence_columns_for_g_and_ema():
    rows = curves([100, 40, 19, 12]) + [(s, "fid_ema", v) for s, v in ((100, 50), (200, 15))]
    out = convergence_columns(rows, floor=4.0, suffixes=("", "_ema"))
    assert out["s_to_5x_floor"] == 150.0 and out["s_to_5x_floor_ema"] == 100.0
    assert out["still_improving"] is True and out["still_improving_ema"] is True
    assert "s_to_5x_floor_ema" not in convergence_columns(curves([9]), 4.0, ("", "_ema"))


def test_summary_and_table_show_time_to_quality_and_improving_seeds():
    base = {"loss": "a", "generator": "g", "discriminator": "g", "dataset": "d", "steps": 10}
    runs = pd.DataFrame(
        [
            {
                **base,
                "setup": "x",
                "seed": s,
                "status": "ok",
                "config_hash": f"h{s}",
                "fid": f,
                "fid_ema": f - 1,
                "s_to_5x_floor_ema": t,
                "still_improving_ema": imp,
            }
            for s, f, t, imp in (
                (0, 20.0, 100.0, True),
                (1, 22.0, math.nan, False),
                (2, 21.0, 140.0, False),
            )
        ]
    )
    summary = summarize(runs)
    row = summary.iloc[0]
    assert row["s_to_5x_floor_ema_n"] == 2 and row["s_to_5x_floor_ema_mean"] == 120.0
    assert row["fid_ema_mean"] == pytest.approx(20.0) and "fid_ema_ci_low" in summary
    assert row["n_still_improving_ema"] == 1
    view = summary_view(summary)
    assert view["s to 5x floor"][0] == "120 (2/3)" and view["improving"][0] == "1/3 *"
    assert view["EMA FID"][0] == "20"
    never = summarize(runs.assign(s_to_5x_floor_ema=math.nan))
    assert summary_view(never)["s to 5x floor"][0] == "not reached"
