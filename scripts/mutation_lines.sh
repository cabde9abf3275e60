#!/usr/bin/env bash
# Writes a patch that marks the equation lines of the mutation-testing targets as added, so that
# `mutmut run --use-patch-file` mutates the equations only (not dataclass fields, validation or messages).
# The lines are those of the named functions and constants below (found with Python's ast, docstrings
# left out), so the patch follows the code when lines move.
# Usage: bash scripts/mutation_lines.sh > /tmp/equations.patch   (docs/testing.md)
set -euo pipefail
cd "$(dirname "$0")/.."
"${PYTHON:-python3}" - <<'EOF'
import ast

# file: the names whose lines are mutated (Class.method for a method)
TARGETS = {
    "cortical_gle/engines/numpy_/dynamics.py": [   # error/membrane kernel, the step, Kolen-Pollack
        "PARALLEL_MIN_SIZE", "_errors_and_membranes_py", "_errors_and_membranes_par",
        "_errors_and_membranes_seq", "errors_and_membranes_kernel", "gle_step", "kolen_pollack_step"],
    "cortical_gle/engines/numpy_/losses.py": ["softmax", "loss_and_dloss"],
    "cortical_gle/engines/numpy_/bptt.py": ["forward_record", "sequence_loss", "bptt_gradient"],
    "cortical_gle/phi.py": [                        # transfer functions and derivatives
        "Phi.__call__", "Phi.derivative", "_tanh_prime", "_linear", "_ones", "_sigmoid", "_sigmoid_prime",
        "_softplus", "_softplus_prime", "_relu", "_relu_prime", "PHIS"],
}


def named_nodes(tree):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            yield node.name, node
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, ast.FunctionDef):
                        yield f"{node.name}.{sub.name}", sub
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(t, ast.Name):
                    yield t.id, node


for path, names in TARGETS.items():
    src = open(path).read().splitlines(keepends=True)
    nodes = dict(named_nodes(ast.parse("".join(src))))
    missing = [n for n in names if n not in nodes]
    if missing:
        raise SystemExit(f"{path}: no top-level {', '.join(missing)} (update TARGETS in scripts/mutation_lines.sh)")
    marked = set()
    for n in names:
        node = nodes[n]
        marked.update(range(node.lineno, node.end_lineno + 1))
        body = getattr(node, "body", [])
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            marked.difference_update(range(body[0].lineno, body[0].end_lineno + 1))   # the docstring
    # one hunk per marked line: exact line numbers (a diff could pair repeated lines differently)
    print(f"Index: {path}\n--- {path}\n+++ {path}")
    removed = 0
    for i, line in enumerate(src, 1):
        if i in marked:
            print(f"@@ -{i - 1 - removed},0 +{i},1 @@\n+{line}", end="" if line.endswith("\n") else "\n")
            removed += 1
EOF
