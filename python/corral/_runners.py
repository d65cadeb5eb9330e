"""Language runners carried by the wheel.

Python and JavaScript programs run inside interpreters that are themselves WebAssembly (the
"runners": CPython via componentize-py, QuickJS). The ``corral`` command builds them on
first use, which needs host tools a Python user may not have (cargo and rustup for QuickJS).
So the wheel carries them: at wheel-build time the build backend (``build_backend/``) has
the library build them into its runner cache and copies the result into
``corral/_runners/runners/<entry>/runner.*`` -- the cache's own layout, entries named by
the runner and the recipe (the hash of its sources) they were built from.

When an :class:`corral.Engine` is created, :func:`install` copies those entries into the
engine's cache directory if they are not there yet. The library then finds them exactly as
if it had built them itself, and checks them the same way: the module's blake3 against
``runner.hash`` when it is admitted (and, with pinned runners, against the pin). An entry
for another recipe is simply never looked up, so a stale bundle cannot be used by mistake.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent / "_runners"


def bundled() -> dict[str, Path]:
    """The runner entries this installation carries: entry name -> directory."""
    root = BUNDLE / "runners"
    if not root.is_dir():
        return {}
    return {
        d.name: d for d in sorted(root.iterdir()) if d.is_dir() and (d / "runner.hash").is_file()
    }


def _copy(src: Path, dst: Path) -> None:
    """``dst`` becomes a copy of ``src``, atomically. (A copy, not a hard link: a link would
    let a write to the cache change the installed package.)"""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def install(cache_dir: str | os.PathLike[str] | None) -> list[str]:
    """Copies the bundled runner entries into ``cache_dir/runners`` where they are missing
    or differ; returns the entries copied. A bundled module is checked against its hash
    before it is copied, and ``runner.hash`` is written last, so a reader never sees a hash
    without its module. Failures only warn: the engine can still build runners itself where
    the host has the tools."""
    entries = bundled()
    if cache_dir is None or not entries:
        return []
    copied = []
    for name, src in entries.items():
        dst = Path(cache_dir) / "runners" / name
        want = (src / "runner.hash").read_bytes()
        try:
            if (dst / "runner.hash").read_bytes() == want and (dst / "runner.wasm").stat().st_size == (
                src / "runner.wasm"
            ).stat().st_size:
                continue
        except OSError:
            pass
        from ._corral import module_hash_of_file

        if module_hash_of_file(src / "runner.wasm") != want.decode().strip():
            warnings.warn(f"corral: the bundled runner {name} does not match its hash; not installed", stacklevel=2)
            continue
        try:
            dst.mkdir(parents=True, exist_ok=True)
            files = sorted(f for f in src.iterdir() if f.is_file() and f.name.startswith("runner."))
            for f in files:
                if f.name != "runner.hash":
                    _copy(f, dst / f.name)
            _copy(src / "runner.hash", dst / "runner.hash")
            copied.append(name)
        except OSError as e:
            warnings.warn(f"corral: cannot install the bundled runner {name} into {dst}: {e}", stacklevel=2)
    return copied


def worker_program() -> Path | None:
    """The ``corral`` command the wheel carries, started as a worker process by engines made
    with ``isolation="workers"`` (it runs the same library as this package)."""
    path = Path(__file__).resolve().parent / "_bin" / "corral"
    return path if path.is_file() and os.access(path, os.X_OK) else None
