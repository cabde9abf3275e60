"""A real (non-editable) wheel carries the protocol and model folders and the CLI entry point."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_data_and_entry_point(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("cortical_gle-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {p.name for p in (ROOT / "protocols").glob("*.yaml")}
    assert shipped and shipped <= {Path(n).name for n in names if n.startswith("cortical_gle/_data/protocols/")}
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "cortical-gle = cortical_gle.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
