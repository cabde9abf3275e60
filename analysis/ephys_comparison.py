"""Compare a current-clamp recording (any file Neo reads) with fitted GLE neurons.

    python analysis/ephys_comparison.py my_cells.nix --current I_inj --voltage V_m --out runs/my_cells

Chains the library: the `ephys-comparison` protocol with `data.path` set (see
protocols/ephys-comparison.yaml for every setting); writes metrics.json (statistics of the
recording and the fitted GLE neurons side by side, tau_m and tau_r with bootstrap intervals)
and ephys_comparison.png into --out.  Without a file it analyses the NEST-made default set.
"""
from __future__ import annotations

import argparse
import sys

from cortical_gle.runner import run_protocol


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recording", nargs="?", help="NIX, NWB, ABF, Spike2, ... (default: the NEST-made set)")
    p.add_argument("--current", default="I_inj", help="name of the injected-current AnalogSignal")
    p.add_argument("--spikes", default="spikes", help="name of the SpikeTrain (else spikes are detected in --voltage)")
    p.add_argument("--voltage", default="V_m", help="name of the membrane-potential AnalogSignal")
    p.add_argument("--threshold-mv", type=float, default=0.0)
    p.add_argument("--out", default="runs/ephys-comparison")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    over = [("channels.current", a.current), ("channels.spikes", a.spikes), ("channels.voltage", a.voltage),
            ("channels.threshold_mV", a.threshold_mv)]
    if a.recording:
        over.append(("data.path", a.recording))
    m = run_protocol("ephys-comparison", out_dir=a.out, quick=a.quick, overrides=over, progress=False)
    for cell, e in m["cells"].items():
        f = e["fit"]
        fitted = (f"tau_m {f['tau_m_ms']:.3g} ms {f['tau_m_ci_ms'].round(3).tolist()}, tau_r {f['tau_r_ms']:.3g} ms "
                  f"{f['tau_r_ci_ms'].round(3).tolist()} over {f['range_hz'][0]:g}-{f['range_hz'][1]:g} Hz"
                  if f["fitted"] else "no GLE fit within the phase tolerance")
        print(f"{cell}: {e['recording']['mean_rate_hz']:.1f} spikes/s, CV {e['recording']['cv']:.2f}; {fitted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
