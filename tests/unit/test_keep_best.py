"""``training.keep = 'best'``: the run ends with, and reports, the epoch of the lowest validation loss."""
import numpy as np
import pytest
from pydantic import ValidationError

from cortical_gle.runner import RunContext
from cortical_gle.tasks.classify import LaggedNetwork, Training, network_factory, train_online

RNG = np.random.default_rng(0)


def _data(n):
    """Class = sign pattern of the mean input, with noisy labels: learnable at first, then overfitted."""
    x = RNG.standard_normal((20, n, 2))
    m = x.mean(axis=0)
    y = np.where(RNG.random(n) < 0.3, RNG.integers(0, 3, n), (m[:, 0] > 0) + (m[:, 1] > 0))
    return x, y


(X, Y), (X_VAL, Y_VAL), (X_TEST, Y_TEST) = _data(40), _data(30), _data(30)


def _train(folder, epochs, keep, resume=False):
    make_net = network_factory(LaggedNetwork(n_hidden=1, n_le=4, n_li=4, dtype="float64"), 2, 3, 0.2, 1e-3, seed=0)
    tr = Training(epochs=epochs, batch=10, plateau_patience=5, keep=keep)
    ctx = RunContext(folder, "numpy", 0, progress=False, resume=resume, run_id="r")
    return train_online(make_net, (lambda i: (X[:, i], Y[i]), Y),
                        {"val": (lambda i: (X_VAL[:, i], Y_VAL[i]), Y_VAL),
                         "test": (lambda i: (X_TEST[:, i], Y_TEST[i]), Y_TEST)}, tr, ctx)


def test_best_epoch_is_the_lowest_validation_loss_and_its_weights(tmp_path):
    """The kept epoch is the first minimum of the validation loss; its weights are bit-identical to a run
    stopped after that epoch (an independent path: training for fewer epochs), and every final_* value is
    that epoch's entry."""
    full = _train(tmp_path / "full", 10, "best")
    kept = int(np.argmin(full["val_loss"])) + 1
    assert full["kept_epoch"] == kept
    assert 1 < kept < 10, "precondition: the validation loss must bottom out inside the run for this test to bite"
    stopped = _train(tmp_path / "stopped", kept, "last")
    for a, b in zip(full["net"].weights, stopped["net"].weights):
        np.testing.assert_array_equal(a, b)
    for s in ("train", "val", "test"):
        assert full[f"final_{s}_acc"] == full[f"{s}_acc"][kept - 1] == stopped[f"final_{s}_acc"]
    assert full["test_pred"] == stopped["test_pred"]
    assert len(full["val_loss"]) == 10                      # the curves still cover every epoch
    last = _train(tmp_path / "last", 10, "last")
    assert last["kept_epoch"] == 10 and last["final_test_acc"] == last["test_acc"][-1]


def test_resume_keeps_the_same_best_epoch(tmp_path):
    """Stopped after 4 epochs and resumed to 10, the kept weights equal an uninterrupted run's."""
    whole = _train(tmp_path / "whole", 10, "best")
    _train(tmp_path / "parts", 4, "best")
    resumed = _train(tmp_path / "parts", 10, "best", resume=True)
    assert resumed["kept_epoch"] == whole["kept_epoch"]
    for a, b in zip(whole["net"].weights, resumed["net"].weights):
        np.testing.assert_array_equal(a, b)


def test_selection_on_the_test_set_is_refused():
    with pytest.raises(ValidationError, match="model selection on the test set"):
        Training(keep="best", monitor="test")


def test_a_missing_best_checkpoint_is_named(tmp_path, monkeypatch):
    """The kept weights come from their own file; a folder changed under the run is an error, not the last
    epoch's weights reported as the best."""
    from cortical_gle.runner import RunContext as Ctx

    real = Ctx.save_checkpoint

    def skip_best(self, net, name, progress):
        if not name.endswith("_best.npz"):
            real(self, net, name, progress)
    monkeypatch.setattr(Ctx, "save_checkpoint", skip_best)
    with pytest.raises(RuntimeError, match="holds no network, not the best epoch"):
        _train(tmp_path, 3, "best")
