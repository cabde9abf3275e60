"""Runs as Neo data: a real numpy-engine recording written to NIX and read back with Neo, nothing lost."""
import json

import neo
import numpy as np
import pytest
import quantities as pq

from cortical_gle import NetworkSpec, get_engine
from cortical_gle.analysis import neo_io


def _recording():
    spec = NetworkSpec.feedforward([2, 3, 1], tau_m=[1.0, 0.5], tau_r=0.2)
    net = get_engine("numpy").build(spec, dt=0.1, seed=0)
    x = np.random.default_rng(0).standard_normal((40, 2, 2))
    rec = net.run(x, record=("r_out", "r", "u", "u_pro", "e"))
    return spec, rec


def _compare(a: neo.Block, b: neo.Block):
    assert b.annotations == a.annotations
    assert len(b.segments) == len(a.segments)
    for sa, sb in zip(a.segments, b.segments):
        assert (sb.name, sb.annotations) == (sa.name, sa.annotations)
        assert [s.name for s in sb.analogsignals] == [s.name for s in sa.analogsignals]
        for x, y in zip(sa.analogsignals, sb.analogsignals):
            np.testing.assert_array_equal(y.magnitude, x.magnitude)
            assert y.units == x.units and y.sampling_period == x.sampling_period and y.t_start == x.t_start
            assert y.description == x.description
            for k, v in x.array_annotations.items():
                np.testing.assert_array_equal(y.array_annotations[k], v)
        for x, y in zip(sa.spiketrains, sb.spiketrains):
            np.testing.assert_array_equal(y.magnitude, x.magnitude)
            assert y.units == x.units and y.t_stop == x.t_stop and y.annotations == x.annotations


def test_segment_layout_matches_the_engine_arrays():
    """Channel k of 'u' is layer/neuron/batch of its annotations; pads dropped; subsampling keeps step every-1."""
    spec, rec = _recording()
    seg = neo_io.recording_to_segment(rec, spec, 0.1 * pq.ms, every=4)
    u = seg.analogsignals[[s.name for s in seg.analogsignals].index("u")]
    assert u.shape == (10, 2 * 3 + 2 * 1)
    for k in range(u.shape[1]):
        l, n, b = (int(u.array_annotations[key][k]) for key in ("layer", "neuron", "batch"))
        np.testing.assert_array_equal(u.magnitude[:, k], rec["u"][3::4, l, b, n])
    assert float(u.t_start.rescale(pq.ms)) == pytest.approx(0.4) and float(u.sampling_period) == pytest.approx(0.4)


def test_nix_round_trip_keeps_every_array_unit_and_annotation(tmp_path):
    spec, rec = _recording()
    ann = neo_io.block_annotations(spec, {"task": "x", "nested": {"a": [1, 2]}}, engine="numpy", seed=3)
    block = neo.Block(name="run", **ann)
    block.segments.append(neo_io.recording_to_segment(rec, spec, 0.1, "epoch 0", epoch=0, method="GLE"))
    st = neo.SpikeTrain([1.0, 2.5] * pq.ms, t_stop=4 * pq.ms, name="spikes", layer=0, neuron=1)
    block.segments.append(neo_io.recording_to_segment(rec, spec, 0.1, "epoch 1", every=2, epoch=1, method="GLE",
                                                      spiketrains=[st]))
    path = neo_io.write_block(block, tmp_path / "rec.nix")
    assert not (tmp_path / "rec.nix.partial").exists()
    back = neo_io.read_run(path)
    _compare(block, back)
    assert NetworkSpec.from_dict(json.loads(back.annotations["network"])).to_dict() == spec.to_dict()
    assert json.loads(back.annotations["protocol"])["nested"] == {"a": [1, 2]}


def test_recorder_leaves_no_file_when_the_run_fails(tmp_path):
    spec, rec = _recording()
    with pytest.raises(RuntimeError):
        with neo_io.NeoRecorder(tmp_path / "r.nix") as r:
            r.add(neo_io.recording_to_segment(rec, spec, 0.1))
            raise RuntimeError("run failed")
    assert list(tmp_path.iterdir()) == []


def test_cli_record_and_export(tmp_path):
    """`run --record` writes recording.nix with the protocol's annotations; `export --format nwb` converts it."""
    from cortical_gle.cli import main
    out = tmp_path / "pa"
    args = ["run", "phase-advance", "--quick", "--out", str(out), "--record", "u,r", "--record-every", "50",
            "--set", "frequencies=[200 Hz]", "--no-progress"]
    # this run records, then fails in the analysis (no whole cycle after the transient): no recording is left
    assert main(args + ["--set", "cycles=1"]) == 2
    assert not list(out.glob("recording*"))
    assert main(args + ["--set", "cycles=4", "--overwrite"]) == 0   # the failed run's config.yaml is still there
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recording"] == {"file": "recording.nix", "segments": 1, "variables": ["u", "r"], "every": 50}
    block = neo_io.read_run(out / "recording.nix")
    assert json.loads(block.annotations["protocol"])["resolved"]["task"] == "phase-advance"
    names = [s.name for s in block.segments[0].analogsignals]
    assert names == ["r_out", "u", "r"]
    assert main(["run", "phase-advance", "--quick", "--out", str(tmp_path / "x"), "--record", "w"]) == 2
    assert main(["export", str(out), "--format", "nwb"]) == 0
    nwb = neo_io.read_blocks(out / "recording.nwb")
    # NWBIO renames signals "<segment> <name> <index>" and keeps no array annotations: the arrays survive
    u = [s for s in nwb[0].segments[0].analogsignals if s.name.split()[1] == "u"][0]
    np.testing.assert_allclose(u.magnitude, [s for s in block.segments[0].analogsignals if s.name == "u"][0].magnitude)


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "junk.nix"
    bad.write_text("not hdf5")
    with pytest.raises(ValueError, match="junk.nix: not a readable NIX file"):
        neo_io.read_run(bad)
    with pytest.raises(FileNotFoundError, match="missing.nix"):
        neo_io.read_run(tmp_path / "missing.nix")
