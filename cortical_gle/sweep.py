r"""Seed sweeps over a grid of protocol settings, run on Dask, with statistics between conditions.

Every combination (condition x seed) is an ordinary run folder written by
:func:`cortical_gle.runner.run_protocol` (``DIR/<condition>/seed<k>/``).  A
finished run (``metrics.json`` status ``complete``) is skipped, a folder with a
``config.yaml`` but no finished run is resumed from its checkpoint
(``resume=True``: the saved settings are the ones passed again), and a run that
fails is reported with its error without stopping the others.

Statistics per metric and pair of conditions: Welch's t test and the
Mann-Whitney U test (scipy), Cohen's d with the pooled standard deviation,

.. math::

    d = \frac{\bar a - \bar b}{\sqrt{((n_a - 1) s_a^2 + (n_b - 1) s_b^2)/(n_a + n_b - 2)}},

and Holm's step-down correction of each test's p-values over the pairs of a
metric (Holm 1979).

Distribution: a :class:`distributed.LocalCluster` sized to the machine by
default, or an existing cluster by address (``--scheduler``), for example one
started by ``dask-jobqueue`` on SLURM (docs/sweeps.md).  Each task limits BLAS
and numba threads to its worker's share of the cores.
"""
from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import numpy as np
import yaml

from .io import save_figure, write_atomic, write_json
from .protocol import ProtocolError, load_protocol, parse_overrides


# -- input -------------------------------------------------------------------
def parse_seeds(text: str) -> list:
    """``"0-9"``, ``"0,3,5"`` or ``"0-2,7"`` to a sorted list of distinct seeds."""
    seeds = set()
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"--seeds {text!r}: {part!r} is not a seed or a range A-B of non-negative integers")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a:
            raise ValueError(f"--seeds {text!r}: range {part.strip()!r} ends before it starts")
        seeds.update(range(a, b + 1))
    return sorted(seeds)


def parse_grid(items) -> dict:
    """``["network.feedback=transpose,random"]`` to ``{key: [values]}`` (values read as YAML)."""
    grid = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key in grid:
            raise ValueError(f"--grid {key} given twice")
        values = [v for _, v in parse_overrides([f"{key}={v}" for v in raw.split(",")])]
        if not values or any(v is None for v in values):
            raise ValueError(f"--grid {item!r}: empty value")
        grid[key] = values
    return grid


def conditions(grid: dict) -> list:
    """All combinations as ``[(name, [(key, value), ...])]`` (one unnamed condition without a grid)."""
    keys = list(grid)
    out = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        pairs = list(zip(keys, combo))
        name = ",".join(f"{k}={v}" for k, v in pairs) or "default"
        out.append((re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name), pairs))
    return out


def plan(protocol, seeds, grid, overrides=(), quick=False, out=".") -> list:
    """Validate every condition (errors before anything runs) and list the runs to do."""
    runs = []
    for name, pairs in conditions(grid):
        over = [tuple(o) for o in overrides] + pairs
        try:
            load_protocol(protocol, over, quick=quick)
        except ProtocolError as err:
            raise ProtocolError(f"condition {name}: {err}") from None
        for seed in seeds:
            runs.append({"condition": name, "seed": int(seed), "overrides": [list(o) for o in over],
                         "out_dir": str(Path(out) / name / f"seed{seed}")})
    return runs


# -- one task ----------------------------------------------------------------
def run_status(out_dir) -> str:
    """``complete``, ``started`` (a config.yaml but no finished run) or ``new``."""
    out_dir = Path(out_dir)
    m = out_dir / "metrics.json"
    if m.is_file():
        try:
            if json.loads(m.read_text()).get("status") == "complete":
                return "complete"
        except (OSError, ValueError):
            pass
    return "started" if (out_dir / "config.yaml").is_file() else "new"


def run_one(protocol, seed, overrides, quick, out_dir, threads=1) -> dict:
    """Run (or resume, or skip) one run folder with ``threads`` BLAS/numba threads; never raises."""
    import numba
    from threadpoolctl import threadpool_limits

    from .runner import run_protocol

    status = run_status(out_dir)
    if status == "complete":
        return {"out_dir": str(out_dir), "status": "skipped"}
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(int(threads)):
            run_protocol(protocol, seed=seed, out_dir=out_dir, quick=quick,
                         overrides=[tuple(o) for o in overrides], resume=status == "started", progress=False)
    except Exception as err:  # reported per run; the others go on
        return {"out_dir": str(out_dir), "status": "failed", "error": f"{type(err).__name__}: {err}"}
    return {"out_dir": str(out_dir), "status": "resumed" if status == "started" else "ran"}


# -- statistics --------------------------------------------------------------
def scalar_metrics(metrics: dict, prefix="") -> dict:
    """Numbers of a metrics.json, nested keys joined by dots (lists and bookkeeping left out).

    Per-method scalars count (``methods.gle.final_loss``): a hypothesis changes
    the GLE runs only, and the table shows it per method.
    """
    skip = {"seed", "wall_time_s", "quick", "plots", "teacher_params", "teacher_tau_m", "partial"}
    out = {}
    for k, v in metrics.items():
        if not prefix and k in skip:
            continue
        if isinstance(v, dict):
            out.update(scalar_metrics(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979)."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def compare(values: dict) -> list:
    """Tests between every pair of conditions of one metric; ``values = {condition: array}``."""
    from scipy import stats

    rows = []
    names = [c for c in values if len(values[c]) >= 2]
    for a, b in itertools.combinations(names, 2):
        x, y = np.asarray(values[a]), np.asarray(values[b])
        pooled = np.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
        rows.append({"a": a, "b": b, "mean_diff": float(x.mean() - y.mean()),
                     "cohen_d": float((x.mean() - y.mean()) / pooled) if pooled > 0 else float("nan"),
                     "welch_t": float(stats.ttest_ind(x, y, equal_var=False).statistic),
                     "welch_p": float(stats.ttest_ind(x, y, equal_var=False).pvalue),
                     "mannwhitney_u": float(stats.mannwhitneyu(x, y, alternative="two-sided").statistic),
                     "mannwhitney_p": float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)})
    for key in ("welch_p", "mannwhitney_p"):
        for row, adj in zip(rows, holm([r[key] for r in rows]) if rows else []):
            row[key + "_holm"] = float(adj)
    return rows


def compare_published(values, mean: float, sd: float, n: int) -> dict:
    r"""Welch's t test of a sweep's values against a published mean +- sd over ``n`` seeds.

    .. math::

        t = \frac{\bar x - \mu_\mathrm{pub}}{\sqrt{s_x^2/n_x + s_\mathrm{pub}^2/n_\mathrm{pub}}}

    with Welch-Satterthwaite degrees of freedom (scipy's ``ttest_ind_from_stats``;
    Welch 1947).  Only the summary statistics of the published runs are known.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        raise ValueError(f"a test against a published value needs >= 2 runs, got {len(x)}")
    res = stats.ttest_ind_from_stats(x.mean(), x.std(ddof=1), len(x), mean, sd, n, equal_var=False)
    return {"mean": float(x.mean()), "sd": float(x.std(ddof=1)), "n": len(x), "published_mean": mean,
            "published_sd": sd, "published_n": n, "mean_diff": float(x.mean() - mean),
            "welch_t": float(res.statistic), "welch_p": float(res.pvalue)}


def aggregate(out, runs, published: dict | None = None) -> dict:
    """Read every finished run of ``runs``; write summary.csv, summary.json and sweep.png in ``out``.

    ``published`` (``{metric: (mean, sd, n, source)}``, :mod:`cortical_gle.published`)
    adds a Welch test of every condition against each published value, Holm-corrected
    over the conditions of a metric.
    """
    out = Path(out)
    data = {}  # metric -> condition -> [(seed, value)]
    for r in runs:
        m = Path(r["out_dir"]) / "metrics.json"
        if run_status(r["out_dir"]) != "complete":
            continue
        for k, v in scalar_metrics(json.loads(m.read_text())).items():
            data.setdefault(k, {}).setdefault(r["condition"], []).append((r["seed"], v))
    summary, tests = [], {}
    for metric, by_cond in sorted(data.items()):
        for cond, sv in by_cond.items():
            v = np.array([x for _, x in sv])
            summary.append({"condition": cond, "metric": metric, "mean": float(v.mean()),
                            "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"), "n": len(v),
                            "seeds": [s for s, _ in sv], "values": v.tolist()})
        tests[metric] = compare({c: [x for _, x in sv] for c, sv in by_cond.items()})
    result = {"summary": summary, "tests": tests, "published": []}
    for metric, (mean, sd, n, source) in (published or {}).items():
        rows = [dict(compare_published([x for _, x in sv], mean, sd, n), condition=cond, metric=metric,
                     source=source)
                for cond, sv in data.get(metric, {}).items() if len(sv) >= 2]
        for row, adj in zip(rows, holm([r["welch_p"] for r in rows]) if rows else []):
            row["welch_p_holm"] = float(adj)
        result["published"] += rows
    write_json(out / "summary.json", result)
    lines = ["condition,metric,mean,sd,n"] + [f"{s['condition']},{s['metric']},{s['mean']!r},{s['sd']!r},{s['n']}"
                                               for s in summary]
    write_atomic(out / "summary.csv", "\n".join(lines) + "\n")
    if data:
        _plot(out, data)
    return result


def _plot(out, data, max_metrics=6):
    from matplotlib.figure import Figure

    metrics = sorted(data)[:max_metrics]
    fig = Figure(figsize=(4 * len(metrics), 3.5))
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for j, (cond, sv) in enumerate(data[metric].items()):
            v = np.array([x for _, x in sv])
            ax.scatter(np.full(len(v), j) + np.linspace(-0.1, 0.1, len(v)), v, s=12, c=f"C{j}")
            ax.errorbar(j + 0.25, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0, fmt="o", c="k")
        ax.set_xticks(range(len(data[metric])), list(data[metric]), rotation=30, ha="right", fontsize=7)
        ax.set_title(metric, fontsize=8)
    fig.tight_layout()
    save_figure(fig, Path(out) / "sweep.png")


def format_table(result: dict) -> str:
    rows = [f"{'metric':40s} {'condition':40s} {'mean':>12s} {'sd':>10s} {'n':>3s}"]
    for s in result["summary"]:
        rows.append(f"{s['metric'][:40]:40s} {s['condition'][:40]:40s} {s['mean']:12.4g} {s['sd']:10.3g} {s['n']:3d}")
    for p in result.get("published", []):
        rows.append(f"vs published {p['metric']} [{p['condition']}]: {p['mean']:.4g} +- {p['sd']:.3g} (n={p['n']}) "
                    f"vs {p['published_mean']:g} +- {p['published_sd']:g} (n={p['published_n']}): Welch t = "
                    f"{p['welch_t']:.3g}, p = {p['welch_p']:.3g} (Holm {p['welch_p_holm']:.3g}); {p['source']}")
    return "\n".join(rows)


# -- the sweep ---------------------------------------------------------------
def _check_same_sweep(path: Path, settings: dict) -> None:
    """A folder holds one sweep: another protocol, grid, --set or --quick there would mix runs
    (finished runs are skipped whatever settings made them).  More seeds are fine."""
    if not path.is_file():
        return
    old = yaml.safe_load(path.read_text()) or {}
    diff = [k for k in ("protocol", "grid", "overrides", "quick") if old.get(k) != yaml.safe_load(
        yaml.safe_dump(settings[k]))]
    if diff:
        raise ValueError(f"{path.parent} holds a sweep with other settings ({', '.join(diff)}: "
                         + "; ".join(f"{k} was {old.get(k)!r}" for k in diff) + "); use another --out")


def run_sweep(protocol, seeds, grid, out, overrides=(), quick=False, scheduler=None, workers=None,
              log=print) -> dict:
    """Plan (validating all conditions), run every folder on Dask, aggregate.  Returns the summary
    with ``runs``: the status (``ran``, ``resumed``, ``skipped``, ``failed`` with ``error``) of each."""
    from distributed import Client, LocalCluster, as_completed

    runs = plan(protocol, seeds, grid, overrides, quick, out)
    Path(out).mkdir(parents=True, exist_ok=True)
    settings = {"protocol": str(protocol), "seeds": list(seeds), "grid": grid,
                "overrides": [list(o) for o in overrides], "quick": quick}
    _check_same_sweep(Path(out) / "sweep.yaml", settings)
    write_atomic(Path(out) / "sweep.yaml", yaml.safe_dump(settings, sort_keys=False))
    cores = os.cpu_count() or 1
    if scheduler:
        client = Client(scheduler)
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        threads = max(1, int(sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()) / n_workers))
        cluster = None
    else:
        n_workers = int(workers or cores)
        threads = max(1, cores // n_workers)
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    statuses = []
    try:
        futures = [client.submit(run_one, protocol, r["seed"], r["overrides"], quick, r["out_dir"], threads,
                                 key=f"run-{r['condition']}-seed{r['seed']}", pure=False, retries=1)
                   for r in runs]
        for fut in as_completed(futures):
            try:
                st = fut.result()
            except Exception as err:  # e.g. the worker died twice
                st = {"out_dir": "?", "status": "failed", "error": f"{type(err).__name__}: {err}"}
            statuses.append(st)
            log(f"[{len(statuses)}/{len(runs)}] {st['status']:8s} {st['out_dir']}"
                + (f": {st['error']}" if st["status"] == "failed" else ""))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    from .published import published_for

    result = aggregate(out, runs, published_for(protocol))
    result["runs"] = statuses
    write_json(Path(out) / "runs.json", statuses)
    return result
