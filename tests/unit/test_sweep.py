"""cortical-gle sweep: input checks, statistics against hand computation, resume on a real Dask cluster."""
import json
import math
import os
import signal
import time

import numpy as np
import pytest

from cortical_gle.io import write_json
from cortical_gle.protocol import ProtocolError
from cortical_gle.sweep import (aggregate, compare_published, format_table, holm, parse_grid, parse_seeds, plan,
                                 run_one, run_sweep)

TINY = [("methods", ["gle"]), ("timing.t_init", 1), ("timing.t_train", 4), ("timing.batch", 2),
        ("record.loss_every", 1)]


def test_seed_ranges():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5,1-2") == [1, 2, 5]
    for bad in ("0-", "a", "3-1", "-2", "1..4", ""):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_bad_input_errors_before_anything_runs(tmp_path):
    with pytest.raises(ProtocolError, match="(?s)condition network.feedback=symmetric.*network.feedback"):
        plan("lagnet", [0], parse_grid(["network.feedback=transpose,symmetric"]), out=tmp_path)
    with pytest.raises(ProtocolError, match="(?s)network.no_such_key.*unknown key"):
        plan("lagnet", [0], parse_grid(["network.no_such_key=1,2"]), out=tmp_path)
    with pytest.raises(ValueError, match="--grid expects"):
        parse_grid(["network.feedback"])
    assert list(tmp_path.iterdir()) == []


def test_aggregation_against_hand_computed_statistics(tmp_path):
    """Means, sds, Welch t, Mann-Whitney U and Holm-adjusted p against values computed by hand."""
    vals = {"A": [1.0, 2.0, 3.0], "B": [2.0, 4.0, 6.0, 8.0]}
    runs = []
    for cond, vs in vals.items():
        for seed, v in enumerate(vs):
            d = tmp_path / cond / f"seed{seed}"
            write_json(d / "metrics.json", {"status": "complete", "seed": seed, "final_loss": {"gle": v}})
            runs.append({"condition": cond, "seed": seed, "out_dir": str(d)})
    res = aggregate(tmp_path, runs)
    s = {r["condition"]: r for r in res["summary"]}
    assert s["A"]["mean"] == 2.0 and s["A"]["sd"] == 1.0 and s["A"]["n"] == 3
    assert s["B"]["mean"] == 5.0 and s["B"]["sd"] == pytest.approx(math.sqrt(20 / 3), rel=1e-12)
    t = res["tests"]["final_loss.gle"][0]
    # Welch: t = (2 - 5) / sqrt(1/3 + (20/3)/4) = -3/sqrt(2)
    assert t["welch_t"] == pytest.approx(-3 / math.sqrt(2), rel=1e-12)
    # Cohen's d: pooled sd^2 = (2*1 + 3*20/3)/5 = 22/5
    assert t["cohen_d"] == pytest.approx(-3 / math.sqrt(22 / 5), rel=1e-12)
    # U of A: pairs (a, b) with a > b, ties count 1/2: (3 > 2) once, (2 = 2) half -> 1.5
    assert t["mannwhitney_u"] == 1.5
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert (tmp_path / "summary.csv").read_text().splitlines()[1].startswith("A,final_loss.gle,2.0,1.0,3")
    assert (tmp_path / "sweep.png").is_file()


def test_sweep_resumes_after_a_killed_worker(tmp_path):
    """A real LocalCluster of 2 workers; the worker running one run is killed (SIGKILL) mid-run, after its
    first checkpoint.  The sweep goes on, Dask reruns that task, which resumes from the checkpoint; the
    result equals an uninterrupted run's (resume is exact) and a second sweep skips everything."""
    from distributed import Client, LocalCluster

    over = TINY + [("timing.t_train", 20), ("record.checkpoint_every", 1)]
    ref = tmp_path / "ref"
    assert run_one("lagline", 0, over, True, ref)["status"] == "ran"
    out = tmp_path / "sweep"
    runs = plan("lagline", [0], {}, over, True, out)
    target = runs[0]["out_dir"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        fut = client.submit(run_one, "lagline", 0, runs[0]["overrides"], True, target, 1, pure=False, retries=1)
        deadline = time.time() + 60
        ckpt = os.path.join(target, "checkpoint_gle.npz")
        while not os.path.exists(ckpt) and time.time() < deadline:
            time.sleep(0.05)
        assert os.path.exists(ckpt), "the run never wrote a checkpoint"
        pids = client.run(os.getpid)
        busy = [a for a, keys in client.processing().items() if keys]
        os.kill(pids[busy[0]], signal.SIGKILL)
        status = fut.result(timeout=120)
    assert status["status"] == "resumed"   # the retry found the killed run's folder and resumed it
    assert json.loads((out / "default" / "seed0" / "metrics.json").read_text())["status"] == "complete"
    a = json.loads((ref / "metrics.json").read_text())["final_loss"]
    b = json.loads((out / "default" / "seed0" / "metrics.json").read_text())["final_loss"]
    assert a == b
    res = run_sweep("lagline", [0], {}, out, over, True, workers=1, log=lambda *_: None)
    assert [r["status"] for r in res["runs"]] == ["skipped"]


def test_comparison_with_a_published_value_by_hand(tmp_path):
    """Welch's t against a published mean +- sd (n): t and its Welch-Satterthwaite p computed by hand."""
    from scipy import stats

    runs = []
    for seed, v in enumerate([90.0, 92.0, 94.0]):
        d = tmp_path / "A" / f"seed{seed}"
        write_json(d / "metrics.json", {"status": "complete", "seed": seed, "methods": {"gle": {"acc": v}}})
        runs.append({"condition": "A", "seed": seed, "out_dir": str(d)})
    res = aggregate(tmp_path, runs, {"methods.gle.acc": (91.7, 0.8, 10, "paper")})
    (row,) = res["published"]
    a, b = 4.0 / 3, 0.64 / 10                 # s_x^2/n_x and s_pub^2/n_pub
    t = (92.0 - 91.7) / math.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / 2 + b * b / 9)
    assert row["welch_t"] == pytest.approx(t, rel=1e-12)
    assert row["welch_p"] == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9)
    assert row["welch_p_holm"] == row["welch_p"] and row["mean_diff"] == pytest.approx(0.3)
    assert "vs published methods.gle.acc [A]" in format_table(res)
    with pytest.raises(ValueError, match=">= 2 runs"):
        compare_published([1.0], 1.0, 1.0, 3)


def test_a_sweep_folder_refuses_other_settings(tmp_path, monkeypatch):
    """Finished runs are skipped whatever made them, so a second sweep with other settings must not share the folder."""
    import cortical_gle.sweep as sweep

    monkeypatch.setattr(sweep, "aggregate", lambda out, runs, published=None: {"summary": [], "tests": {}})
    kw = dict(protocol="lagline", seeds=[], grid={}, out=tmp_path, quick=True, workers=1, log=lambda *_: None)
    run_sweep(overrides=[("timing.t_train", 2)], **kw)          # no seeds: nothing runs, the settings are written
    run_sweep(overrides=[("timing.t_train", 2)], **kw)          # the same settings again: fine
    with pytest.raises(ValueError, match="overrides"):
        run_sweep(overrides=[("timing.t_train", 3)], **kw)
