"""The wheel carries the language runners: Python and JavaScript run with no Rust toolchain
(and no compiler at all) on the PATH, from an empty cache; compiled languages say which
compiler is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import corral
from corral import _runners

SCRIPT = r"""
import json, corral
out = {}
for lang, code in [("python", "import sys; print('py', sys.version_info[:2] >= (3, 11))"),
                   ("javascript", "console.log('js', [1, 2, 3].map(x => x * 2).join(','))")]:
    r = corral.run(code, language=lang)
    out[lang] = [r.verdict, r.stdout, r.module_hash]
for lang, code in [("rust", "fn main() {}"), ("c", "int main(void) { return 0; }"),
                   ("cpp", "int main() { return 0; }")]:
    try:
        r = corral.run(code, language=lang)
        out[lang] = ["report", r.verdict]
    except corral.CorralError as e:
        out[lang] = [type(e).__name__, str(e)]
print(json.dumps(out))
"""


def no_toolchain_env(tmp: Path) -> dict[str, str]:
    """An environment with an empty PATH (no cargo, rustup, rustc, python3, clang), an empty
    corral home and a HOME without ~/.cargo."""
    (tmp / "bin").mkdir()
    (tmp / "home").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CARGO", "RUSTUP", "RUST", "CORRAL_"))
    }
    env.update(PATH=str(tmp / "bin"), HOME=str(tmp / "home"), CORRAL_HOME=str(tmp / "corral"))
    env.pop("XDG_CACHE_HOME", None)
    return env


def run_script(env: dict[str, str], prefix: list[str] | None = None) -> dict:
    out = subprocess.run(
        [*(prefix or []), sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_the_package_carries_the_runners() -> None:
    entries = _runners.bundled()
    manifest = json.loads((_runners.BUNDLE / "MANIFEST.json").read_text())
    assert set(manifest) == {"python", "javascript"}
    assert {m["entry"] for m in manifest.values()} == set(entries)
    for m in manifest.values():
        d = entries[m["entry"]]
        assert (d / "runner.hash").read_text().strip() == m["module_hash"]
        assert (d / "runner.wasm").stat().st_size == m["bytes"]


def test_python_and_js_without_a_rust_toolchain(tmp_path: Path) -> None:
    for tool in ("cargo", "rustup", "rustc", "python3", "clang"):
        assert shutil.which(tool, path=str(tmp_path / "bin")) is None
    env = no_toolchain_env(tmp_path)
    out = run_script(env)
    manifest = json.loads((_runners.BUNDLE / "MANIFEST.json").read_text())
    assert out["python"] == ["ok", "py True\n", manifest["python"]["module_hash"]]
    assert out["javascript"] == ["ok", "js 2,4,6\n", manifest["javascript"]["module_hash"]]
    # The runners in the fresh cache are the bundled ones, copied, not built there.
    cache = tmp_path / "corral" / "cache" / "runners"
    assert sorted(p.name for p in cache.iterdir()) == sorted(_runners.bundled())
    for entry in cache.iterdir():
        assert sorted(p.name for p in entry.iterdir()) == sorted(
            p.name for p in _runners.bundled()[entry.name].iterdir()
        ), "a runner was built, not installed from the wheel"
    # Rust needs rustc, which is not there: a HostError that says so.
    kind, message = out["rust"]
    assert kind == "HostError" and "rustc" in message, out["rust"]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap to hide clang")
def test_c_and_cpp_say_which_compiler_is_missing(tmp_path: Path) -> None:
    """With clang hidden (an empty directory mounted over it in a private mount namespace),
    C and C++ raise a HostError naming clang and the packages to install."""
    env = no_toolchain_env(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    prefix = [shutil.which("bwrap"), "--dev-bind", "/", "/", "--bind", str(empty), "/usr/lib/llvm-14", "--"]
    out = run_script(env, prefix)
    for lang in ("c", "cpp"):
        kind, message = out[lang]
        assert kind == "HostError" and "clang" in message and "apt-get install" in message, out[lang]
    assert out["python"][:2] == ["ok", "py True\n"]


def test_c_compiles_without_a_rust_toolchain(tmp_path: Path) -> None:
    """C and C++ need clang (a Debian package), not cargo or rustup."""
    out = run_script(no_toolchain_env(tmp_path))
    assert out["c"] == ["report", "ok"] and out["cpp"] == ["report", "ok"], out


def test_install_is_idempotent_and_repairs(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert sorted(_runners.install(cache)) == sorted(_runners.bundled())
    assert _runners.install(cache) == []
    entry = next(iter(_runners.bundled()))
    (cache / "runners" / entry / "runner.hash").write_text("blake3:" + "0" * 64)
    assert _runners.install(cache) == [entry]
    # The cache holds copies: changing them never changes the installed package.
    assert (cache / "runners" / entry / "runner.hash").stat().st_ino != (
        _runners.bundled()[entry] / "runner.hash"
    ).stat().st_ino
    assert corral._corral.module_hash_of_file(cache / "runners" / entry / "runner.wasm") == (
        cache / "runners" / entry / "runner.hash"
    ).read_text()
    assert str(corral.Engine(cache_dir=cache).cache_dir) == str(cache)
