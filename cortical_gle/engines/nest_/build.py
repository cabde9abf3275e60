"""Build the NEST modules of ``models/nest/`` once per machine and cache them.

Two modules come out of ``models/nest/``:

* ``gle_rate_module`` (C++, ``models/nest/gle_rate/``): the rate-exact GLE
  neuron and its plastic synapses, what ``--engine nest`` runs;
* ``gle_nestml_module`` (NESTML, ``models/nest/*.nestml``): the spiking variant
  (``gle_neuron`` co-generated with its third-factor ``gle_synapse``).

Both are built against the NEST wheel (recipe: a ``nest-config`` of our own,
``-D_GLIBCXX_USE_CXX11_ABI=0``, no link libraries: the kernel's symbols come
from PyNEST) into ``<cache>/nest/<key>/``, where ``<key>`` hashes the model
sources, the NEST and NESTML versions and the compiler.  A file lock makes a
second process wait for the first instead of building into the same folder.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ...data import default_cache_dir
from ...resources import data_dir

RATE_MODULE = "gle_rate_module"
NESTML_MODULE = "gle_nestml_module"
#: NESTML neuron/synapse pairs generated together (the synapse reads the neuron's error)
NESTML_PAIRS = [{"neuron": "gle_neuron", "synapses": {"gle_synapse": {"post_ports": [["e_post", "e_syn"]]}}}]
#: NESTML 9 needs the name of each synapse's weight and delay variable
NESTML_SYNAPSE_VARIABLES = {"weight_variable": {"gle_synapse": "w"}, "delay_variable": {"gle_synapse": "delay"}}


class NestBuildError(RuntimeError):
    """The NEST modules could not be built (the message says what to install or fix)."""


# what the build needs, and the Debian package that provides it
_TOOLS = (("g++", "g++"), ("cmake", "cmake"), ("make", "make"))
_HEADERS = (("boost/version.hpp", "libboost-dev"), ("gsl/gsl_version.h", "libgsl-dev"), ("ltdl.h", "libltdl-dev"))


def models_dir() -> Path:
    return data_dir("models") / "nest"


def nest_package_dir() -> Path:
    """The installed ``nest`` package (the wheel), found without importing it."""
    spec = importlib.util.find_spec("nest")
    if spec is None or not spec.submodule_search_locations:
        raise NestBuildError("the Python package 'nest-simulator' is not installed (pip install nest-simulator==3.10.0)")
    return Path(list(spec.submodule_search_locations)[0])


def check_toolchain() -> None:
    """Raise one :class:`NestBuildError` naming every missing compiler, tool or header (with its Debian package)."""
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in _TOOLS if shutil.which(tool) is None]
    include_dirs = [Path("/usr/include"), Path("/usr/local/include")]
    for header, pkg in _HEADERS:
        if not any((d / header).is_file() for d in include_dirs):
            missing.append(f"the header {header} (Debian package {pkg})")
    if missing:
        pkgs = " ".join(sorted({m.split("package ")[1].rstrip(")") for m in missing}))
        raise NestBuildError(
            "cannot build the NEST modules: missing " + "; ".join(missing)
            + f". Install with: sudo apt-get install -y {pkgs} (scripts/setup.sh does this)")


def _compiler_version() -> str:
    try:
        return subprocess.run(["g++", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        return "no g++"


def _nest_cflags() -> str:
    """The wheel's compile flags plus the old C++ string ABI it was built with."""
    return "-Wall -fopenmp -O2 -std=c++20 -D_GLIBCXX_USE_CXX11_ABI=0"


def build_key() -> str:
    """Hash of everything the compiled modules depend on."""
    h = hashlib.sha256()
    root = models_dir()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".nestml", ".cpp", ".h", ".txt")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    for dist in ("nest-simulator", "nestml"):
        try:
            h.update(f"{dist}={importlib.metadata.version(dist)}".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{dist}=missing".encode())
    h.update(_compiler_version().encode())
    h.update(_nest_cflags().encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    return default_cache_dir() / "nest"


@contextmanager
def _locked(path: Path):
    """Exclusive advisory lock on ``path`` (a second builder blocks here until the first is done)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_nest_config(prefix: Path) -> Path:
    """A ``bin/nest-config`` that points NESTML at the wheel (its own names a temporary build prefix)."""
    nest_dir = nest_package_dir()
    script = prefix / "bin" / "nest-config"
    script.parent.mkdir(parents=True, exist_ok=True)
    answers = {
        "--prefix": str(nest_dir), "--exec-prefix": str(nest_dir),
        "--includes": f"-I{nest_dir / 'include' / 'nest'}", "--libs": "", "--cflags": _nest_cflags(),
        "--compiler": "g++", "--compiler-name": "GNU", "--version": importlib.metadata.version("nest-simulator"),
        "--python-executable": sys.executable, "--static-libraries": "OFF",
        "--libdir": "lib", "--datadir": "share/nest", "--docdir": "share/doc/nest",
    }
    cases = "\n".join(f'    {k}) echo "{v}" ;;' for k, v in answers.items())
    script.write_text(f'#!/bin/sh\n# written by cortical_gle: the NEST wheel, for NESTML\ncase "$1" in\n{cases}\n'
                      f'    *) echo "" ;;\nesac\n')
    script.chmod(0o755)
    return prefix


def _run(cmd, cwd, log: Path) -> None:
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(map(str, cmd)) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode:
        tail = "\n".join(log.read_text().splitlines()[-25:])
        raise NestBuildError(f"'{' '.join(map(str, cmd))}' failed (exit {proc.returncode}); log {log}:\n{tail}")


def _build_rate_module(work: Path, out: Path, log: Path) -> None:
    src = models_dir() / "gle_rate"
    build = work / "rate_build"
    build.mkdir()
    jobs = str(max(1, min(2, os.cpu_count() or 1)))
    _run(["cmake", str(src), f"-DNEST_INCLUDE_DIR={nest_package_dir() / 'include' / 'nest'}",
          f"-DNEST_CXX_FLAGS={_nest_cflags()}", f"-DCMAKE_INSTALL_PREFIX={out}", "-DCMAKE_BUILD_TYPE=Release"],
         build, log)
    _run(["make", "-j", jobs, "install"], build, log)


def _build_nestml_module(work: Path, out: Path, log: Path) -> None:
    from pynestml.frontend.pynestml_frontend import generate_nest_target

    sources = sorted(str(p) for p in models_dir().glob("*.nestml"))
    if not sources:
        return
    prefix = _write_nest_config(work / "nest_prefix")
    with open(log, "a") as fh, _redirect_fds(fh):
        try:
            generate_nest_target(input_path=sources, target_path=str(work / "nestml_target"),
                                 install_path=str(out), module_name=NESTML_MODULE, logging_level="WARNING",
                                 codegen_opts={"nest_path": str(prefix), "neuron_synapse_pairs": NESTML_PAIRS,
                                              **NESTML_SYNAPSE_VARIABLES})
        except (Exception, SystemExit) as err:  # NESTML reports model errors by raising or exiting
            tail = "\n".join(log.read_text().splitlines()[-25:])
            raise NestBuildError(f"NESTML could not generate/compile {sources}: {err}; log {log}:\n{tail}") from None
    if not any(out.rglob(f"{NESTML_MODULE}.so")):
        # NESTML returns normally when the model check or the compiler fails: name the first errors
        lines = log.read_text().splitlines()
        errors = [ln for ln in lines if " error:" in ln or ", ERROR," in ln][:8] or lines[-25:]
        raise NestBuildError(f"NESTML did not produce {NESTML_MODULE}.so from {sources}; log {log}:\n"
                             + "\n".join(errors))


@contextmanager
def _redirect_fds(fh):
    """Send stdout/stderr (also of compilers NESTML starts) to the build log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def module_paths(key: str | None = None) -> dict:
    folder = cache_root() / (key or build_key())
    return {"rate": folder / f"{RATE_MODULE}.so", "nestml": folder / f"{NESTML_MODULE}.so", "folder": folder}


def build_nest(force: bool = False, nestml: bool = False, log=None) -> dict:
    """Build (or find) the cached modules; returns ``{"rate": Path, "nestml": Path, "folder": Path}``.

    Parameters
    ----------
    force : bool
        Rebuild even if the cache holds this key.
    nestml : bool
        Also generate and compile the NESTML models (the spiking variant,
        ``spec.spiking``); the rate engine needs only the C++ module.
    log : callable, optional
        Progress messages (e.g. ``print``).
    """
    say = log or (lambda msg: None)
    key = build_key()
    paths = module_paths(key)
    folder = paths["folder"]
    wanted = [paths["rate"]] + ([paths["nestml"]] if nestml else [])
    if not force and all(p.is_file() for p in wanted):
        return paths
    check_toolchain()
    with _locked(cache_root() / f"{key}.lock"):
        # another process may have finished the build while we waited for the lock
        if not force and all(p.is_file() for p in wanted):
            return paths
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / "build.log"
        with tempfile.TemporaryDirectory(prefix="gle_nest_build_") as tmp:
            work, staging = Path(tmp), Path(tmp) / "install"
            staging.mkdir()
            if force or not paths["rate"].is_file():
                say(f"building {RATE_MODULE} (C++) into {folder}")
                _build_rate_module(work, staging, log_path)
            if nestml and (force or not paths["nestml"].is_file()):
                say(f"generating and building {NESTML_MODULE} (NESTML) into {folder}")
                _build_nestml_module(work, staging, log_path)
            # move finished files in atomically: a reader never sees half a module
            for so in staging.rglob("*.so"):
                tmp_target = folder / (so.name + ".tmp")
                shutil.copy2(so, tmp_target)
                os.replace(tmp_target, folder / so.name)
    missing = [str(p) for p in wanted if not p.is_file()]
    if missing:
        raise NestBuildError(f"the build finished but did not produce {', '.join(missing)} (log {folder / 'build.log'})")
    return paths
