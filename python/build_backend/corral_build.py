"""The PEP 517 backend of the corral package: maturin's, after bundling the language runners.

A Python user has no Rust toolchain, and the JavaScript runner (QuickJS) is built with cargo
on first use. So before maturin builds the wheel, this backend has corral build its runners
at wheel-build time -- the same library code the ``corral`` command runs on first use, by
running ``corral check`` on an empty ``.py`` and ``.js`` program -- and copies them from
corral's runner cache into ``corral/_runners`` (see ``corral/_runners.py`` for how the
package uses them). The copy is checked: each copied entry's ``runner.hash`` must be the
``module_hash`` that ``corral check`` reported. That ``corral`` binary goes into
``corral/_bin`` too: it is the worker program of ``Engine(isolation="workers")``.

Environment:

- ``CORRAL_WHEEL_PROFILE``: the cargo profile of the extension and of the ``corral`` binary
  used here (default ``release``; ``dev`` shares the test suite's build).
- ``CORRAL_WHEEL_RUNNERS=0``: bundle no runners (the package then builds them on first use,
  as the command does, where the host has the tools).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import maturin
from maturin import *  # noqa: F401,F403 -- every other hook is maturin's

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parent
BUNDLE = PACKAGE / "corral" / "_runners"
BIN = PACKAGE / "corral" / "_bin"
PROBES = {"python": ("probe.py", "pass\n"), "javascript": ("probe.js", "")}


def _profile() -> str:
    return os.environ.get("CORRAL_WHEEL_PROFILE", "release")


def _cache_dir() -> Path:
    """corral's cache directory, as ``corral::hostfs::cache_dir`` finds it."""
    if os.environ.get("CORRAL_HOME"):
        return Path(os.environ["CORRAL_HOME"]) / "cache"
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "corral"
    return Path.home() / ".cache" / "corral"


def _pinned_entry(language: str) -> str | None:
    """The name of the pinned runner's cache entry, ``<runner>-<recipe>`` (runners/pins.toml)."""
    try:
        import tomllib

        pins = tomllib.loads((ROOT / "runners" / "pins.toml").read_text())
        return f"{language}-{pins[language]['recipe']}"
    except (ImportError, OSError, KeyError, TypeError, ValueError):
        return None


def _corral_binary(profile: str) -> Path:
    subprocess.run(
        ["cargo", "build", "--locked", "--quiet", "-p", "corral-cli", "--profile", profile],
        cwd=ROOT,
        check=True,
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / ("debug" if profile == "dev" else profile) / "corral"


def bundle_runners() -> dict[str, dict[str, object]]:
    """Builds (if needed) and copies every language runner into ``corral/_runners``."""
    corral = _corral_binary(_profile())
    cache = _cache_dir()
    manifest: dict[str, dict[str, object]] = {}
    shutil.rmtree(BUNDLE, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        for language, (name, text) in PROBES.items():
            probe = Path(tmp) / name
            probe.write_text(text)
            out = subprocess.run(
                [str(corral), "check", "--json", str(probe)], capture_output=True, text=True
            )
            if out.returncode != 0:
                sys.stderr.write(out.stderr)
                raise RuntimeError(f"corral could not build its {language} runner (see above)")
            want = json.loads(out.stdout)["module_hash"]
            entries = [
                h.parent
                for h in sorted((cache / "runners").glob("*/runner.hash"))
                if h.read_text().strip() == want
            ]
            if len(entries) > 1:
                # Entries of other recipes may hold the same bytes (a reproducible runner whose
                # recipe changed): the engine looks only in its own recipe's entry, the pinned one.
                pinned = _pinned_entry(language)
                entries = [e for e in entries if e.name == pinned]
            if len(entries) != 1:
                raise RuntimeError(
                    f"expected one {language} runner with hash {want} in {cache / 'runners'}, found {len(entries)}"
                )
            entry = entries[0]
            dst = BUNDLE / "runners" / entry.name
            dst.mkdir(parents=True)
            for f in sorted(entry.iterdir()):
                if f.is_file() and f.name.startswith("runner."):
                    shutil.copyfile(f, dst / f.name)
            manifest[language] = {
                "entry": entry.name,
                "module_hash": want,
                "bytes": (dst / "runner.wasm").stat().st_size,
            }
    (BUNDLE / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # The same `corral` serves as the worker program of `Engine(isolation="workers")`.
    shutil.rmtree(BIN, ignore_errors=True)
    BIN.mkdir(parents=True)
    shutil.copyfile(corral, BIN / "corral")
    os.chmod(BIN / "corral", 0o755)
    return manifest


def _settings(config_settings):
    """maturin's settings, with ``--profile`` added unless the caller chose one."""
    settings = dict(config_settings or {})
    args = settings.get("maturin.build-args", settings.get("build-args"))
    if args is None:
        args = os.environ.get("MATURIN_PEP517_ARGS", "")
    args = shlex.split(args) if isinstance(args, str) else list(args)
    if not any(a in ("--release", "-r") or a.startswith("--profile") for a in args):
        args += ["--profile", _profile()]
    settings.pop("build-args", None)
    settings["maturin.build-args"] = shlex.join(args)
    return settings


def _prepare() -> None:
    if os.environ.get("CORRAL_WHEEL_RUNNERS", "1") != "0":
        manifest = bundle_runners()
        for language, m in manifest.items():
            print(f"corral: bundled the {language} runner {m['entry']} ({m['bytes']} bytes)")
    else:
        shutil.rmtree(BUNDLE, ignore_errors=True)
        shutil.rmtree(BIN, ignore_errors=True)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _prepare()
    return maturin.build_wheel(wheel_directory, _settings(config_settings), metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _prepare()
    return maturin.build_editable(wheel_directory, _settings(config_settings), metadata_directory)
