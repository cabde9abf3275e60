"""``cortical-gle``: run and list protocols.  The CLI only chains library calls."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cortical-gle", description="GLE protocols on the numpy, Brian2 and NEST engines")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run a protocol (a shipped name or a YAML file)")
    p_run.add_argument("protocol", nargs="?", help="protocol name (see 'cortical-gle list') or path to a .yaml file")
    p_run.add_argument("--engine", default=None, help="engine (default numpy)")
    p_run.add_argument("--quick", action="store_true", help="short version (what CI runs)")
    p_run.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p_run.add_argument("--out", default=None, help="output folder (default runs/<protocol>)")
    p_run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a protocol value, e.g. --set network.tau_r=0.2 (repeatable)")
    p_run.add_argument("--resume", metavar="DIR", default=None,
                       help="continue an interrupted run in DIR; options given with it must match the saved run")
    p_run.add_argument("--overwrite", action="store_true",
                       help="delete the files of a run already in the output folder before running")
    p_run.add_argument("--no-progress", action="store_true")
    p_run.add_argument("--record", default=None, metavar="VARS",
                       help="write these variables (u,u_pro,r,v,e,r_out) as Neo data to OUT/recording.nix")
    p_run.add_argument("--record-every", type=int, default=None, metavar="N", help="keep every N-th step")
    p_exp = sub.add_parser("export", help="convert a finished run's recording (recording.nix) to another format")
    p_exp.add_argument("run_dir")
    p_exp.add_argument("--format", default="nix", choices=["nix", "nwb"])
    sub.add_parser("list", help="list the shipped protocols")
    p_build = sub.add_parser("build-nest", help="compile the NEST modules of models/nest/ into the per-user cache")
    p_build.add_argument("--force", action="store_true", help="rebuild even if the cache has this version")
    p_build.add_argument("--rate-only", action="store_true",
                         help="only the rate module (skip the NESTML spiking models, spec.spiking)")
    p_sw = sub.add_parser("sweep", help="run a protocol over seeds and a grid of settings on Dask, with statistics")
    p_sw.add_argument("protocol")
    p_sw.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,5")
    p_sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                      help="setting to vary, e.g. network.feedback=transpose,random (repeatable)")
    p_sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p_sw.add_argument("--quick", action="store_true")
    p_sw.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    p_sw.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    p_sw.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "sweep":
        from .protocol import ProtocolError, parse_overrides
        from .sweep import format_table, parse_grid, parse_seeds, run_sweep
        try:
            res = run_sweep(args.protocol, parse_seeds(args.seeds), parse_grid(args.grid), args.out,
                            parse_overrides(args.overrides), args.quick, args.scheduler, args.workers)
        except (ProtocolError, ValueError) as err:
            print(f"cortical-gle: error: {err}", file=sys.stderr)
            return 2
        print(format_table(res))
        failed = [r for r in res["runs"] if r["status"] == "failed"]
        return 1 if failed else 0

    if args.command == "build-nest":
        from .engines.nest_.build import NestBuildError, build_nest
        try:
            paths = build_nest(force=args.force, nestml=not args.rate_only, log=print)
        except NestBuildError as err:
            print(f"cortical-gle: error: {err}", file=sys.stderr)
            return 2
        print(f"NEST modules in {paths['folder']}")
        return 0

    from .protocol import ProtocolError, list_protocols, parse_overrides
    from .runner import run_protocol

    if args.command == "list":
        for name, desc in list_protocols():
            print(f"{name:20s} {desc}")
        return 0
    if args.command == "export":
        from .analysis.neo_io import export_run
        try:
            print("wrote", export_run(args.run_dir, args.format))
        except (ValueError, FileNotFoundError) as err:
            print(f"cortical-gle: error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.protocol is None and args.resume is None:
        parser.error("run needs a PROTOCOL (or --resume DIR)")
    if args.resume is not None and args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
        parser.error(f"--resume {args.resume} and --out {args.out} name different folders")
    try:
        metrics = run_protocol(args.protocol, engine=args.engine, seed=args.seed,
                               out_dir=args.resume or args.out, quick=args.quick or None,
                               overrides=parse_overrides(args.overrides), resume=args.resume is not None,
                               progress=not args.no_progress and sys.stderr.isatty(), overwrite=args.overwrite,
                               record=args.record, record_every=args.record_every)
    except (ProtocolError, ValueError, FileNotFoundError) as err:
        print(f"cortical-gle: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cortical-gle: interrupted; partial results and a checkpoint (if the task keeps one) are in the output "
              "folder; continue with --resume DIR", file=sys.stderr)
        return 130
    summary = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and k != "protocol_hash"}
    print("done:", ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
