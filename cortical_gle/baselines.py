"""Offline baselines the paper compares GLE with (an MLP on the unrolled sequence)."""
from __future__ import annotations

import numpy as np

from .engines.numpy_.losses import softmax
from .engines.numpy_.optim import Adam


def train_mlp(x, y, x_test, y_test, hidden=(256, 256), epochs=200, lr=1e-3, batch=100, seed=0,
              weight_decay=0.0, callback=None, extra_tests: dict | None = None) -> dict:
    """ReLU MLP with softmax cross-entropy and Adam, trained on whole sequences (numpy).

    Returns per-epoch ``train_acc``, ``test_acc`` (percent), their last values
    ``final_train_acc``, ``final_test_acc``, the final test predictions ``test_pred``
    (a list) and the parameter count; for each ``name: (x, y)`` of ``extra_tests``
    (validation sets included: reported, never used to choose) also ``<name>_acc``,
    ``final_<name>_acc`` and ``<name>_pred``.
    """
    rng = np.random.default_rng(seed)
    sizes = [x.shape[1], *hidden, int(max(y.max(), y_test.max()) + 1)]
    shapes = [s for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))]
    # weights and biases are views of one flat buffer, updated by the engine's Adam in one call
    theta = np.zeros(sum(int(np.prod(s)) for s in shapes))
    grad_flat = np.zeros_like(theta)
    params, grads, k = [], [], 0
    for s in shapes:
        n = int(np.prod(s))
        params.append(theta[k:k + n].reshape(s))
        grads.append(grad_flat[k:k + n].reshape(s))
        k += n
    for i in range(0, len(params), 2):
        params[i][...] = rng.normal(0, np.sqrt(2.0 / sizes[i // 2]), params[i].shape)
    adam = Adam(theta.size, lr)

    def forward(xb):
        acts = [xb]
        h = xb
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i < len(params) - 2:
                h = np.maximum(h, 0)
            acts.append(h)
        return acts

    extra_tests = extra_tests or {}
    hist = {"train_acc": [], "test_acc": [], **{f"{k}_acc": [] for k in extra_tests}}
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        correct = 0
        for k in range(0, len(x), batch):
            idx = order[k:k + batch]
            acts = forward(x[idx])
            p = softmax(acts[-1])
            correct += int((p.argmax(1) == y[idx]).sum())
            g = p
            g[np.arange(len(idx)), y[idx]] -= 1
            g /= len(idx)
            for i in range(len(params) - 2, -1, -2):
                grads[i][...] = acts[i // 2].T @ g + weight_decay * params[i]
                grads[i + 1][...] = g.sum(0)
                if i > 0:
                    g = (g @ params[i].T) * (acts[i // 2] > 0)
            adam.step(theta, grad_flat)
        pred = forward(x_test)[-1].argmax(1)
        hist["train_acc"].append(100.0 * correct / len(x))
        hist["test_acc"].append(100.0 * float((pred == y_test).mean()))
        for k, (xe, ye) in extra_tests.items():
            hist[f"{k}_pred"] = forward(xe)[-1].argmax(1)
            hist[f"{k}_acc"].append(100.0 * float((hist[f"{k}_pred"] == ye).mean()))
        if callback:
            callback(epoch, hist)
    hist["test_pred"] = pred
    for k in ("train", "test", *extra_tests):
        hist[f"final_{k}_acc"] = hist[f"{k}_acc"][-1]
        if k != "train":
            hist[f"{k}_pred"] = np.asarray(hist[f"{k}_pred"]).tolist()
    hist["n_params"] = int(sum(p.size for p in params))
    return hist
