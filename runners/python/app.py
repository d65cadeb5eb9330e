"""corral Python runner: the app module that componentize-py turns into runner.wasm.

Build-time (componentize-py pre-initialisation): this module is imported once,
it imports the PRELOAD list below, and the interpreter heap is snapshotted into
the component.  Only modules in sys.modules at that moment exist at run time;
there is no stdlib on any filesystem at run time.

Run-time contract (export wasi:cli/run@0.2.12#run of the wasi:cli/command world):
  argv = [NAME, SOURCE, arg1, arg2, ...]   (wasi:cli/environment.get-arguments)
  * sys.argv becomes [NAME, arg1, arg2, ...]; SOURCE is compiled with filename
    NAME and executed as module __main__ (sys.modules["__main__"]).
  * normal completion            -> run returns ok                  (exit 0)
  * sys.exit() / sys.exit(None)  -> run returns ok                  (exit 0)
  * sys.exit(n), int n           -> n & 0xff; 0 -> ok, else wasi:cli/exit.exit-with-code(n & 0xff)
  * sys.exit(other)              -> str(other) on stderr, exit-with-code(1)
  * uncaught exception / SyntaxError -> traceback on stderr, exit-with-code(1)
  * bad argv (fewer than 2 args) -> usage message on stderr, exit-with-code(2)
  * os._exit(n)                  -> exit-with-code(n & 0xff) at once, no flush
  atexit handlers run, then sys.stdout/sys.stderr are flushed, before any exit.
  stdout is block-buffered (8 KiB) and stderr line-buffered, as CPython with a
  pipe: output still in the buffer is lost if the host stops the guest (trap).
  sys.path is [dirname(NAME)] ('' = the WASI cwd), bytecode is never written.
  Special case: argv == ["--corral-info"] prints a JSON self-description
  (Python version, preloaded modules, preload failures) and exits 0.
  Special case: argv == ["--corral-compile", NAME, SOURCE] compiles SOURCE
  exactly as a run does and runs none of it: exit 0 if it compiles, exit 1
  with the error on stderr (as `python NAME` prints it) for a SyntaxError
  (IndentationError, TabError, ...), exit 3 if compiling raised anything
  else (RecursionError, MemoryError: the run itself reports those).
"""

import sys
import importlib

# Keep in sync with PRELOAD.md.  Order matters only for readability.
PRELOAD = (
    # language support / core
    "__future__", "abc", "builtins", "codecs", "copy", "copyreg", "contextlib",
    "contextvars", "dataclasses", "enum", "errno", "functools", "gc", "inspect",
    "io", "itertools", "keyword", "linecache", "numbers", "operator", "reprlib",
    "types", "typing", "warnings", "weakref", "atexit", "traceback",
    "ast", "dis", "token", "tokenize",
    # text
    "re", "string", "textwrap", "difflib", "unicodedata", "stringprep",
    "pprint", "shlex", "fnmatch", "html", "html.parser", "html.entities",
    "gettext", "locale",
    "encodings", "encodings.aliases", "encodings.ascii", "encodings.latin_1",
    "encodings.utf_8", "encodings.utf_8_sig", "encodings.utf_16",
    "encodings.utf_16_le", "encodings.utf_16_be", "encodings.utf_32",
    "encodings.cp1252", "encodings.cp437", "encodings.iso8859_1",
    "encodings.iso8859_15", "encodings.idna", "encodings.punycode",
    "encodings.unicode_escape", "encodings.raw_unicode_escape",
    "encodings.hex_codec", "encodings.base64_codec", "encodings.rot_13",
    "encodings.charmap",
    # data structures / algorithms
    "collections", "collections.abc", "heapq", "bisect", "array", "queue",
    "graphlib", "struct",
    # numbers / math
    "math", "cmath", "decimal", "fractions", "random", "statistics",
    # date / time
    "time", "datetime", "calendar", "_strptime",
    # formats / encodings
    "json", "csv", "base64", "binascii", "hashlib", "hmac", "secrets", "uuid",
    "zlib", "gzip", "zipfile", "pickle", "tomllib", "ipaddress", "colorsys",
    "urllib.parse", "xml.etree.ElementTree",
    # files / os (only preopened directories are visible at run time)
    "os", "os.path", "posixpath", "stat", "pathlib", "glob", "shutil", "tempfile",
    # program structure / tooling
    "argparse", "getopt", "optparse", "configparser", "logging", "timeit",
    "sched", "threading", "platform", "sqlite3",
    "unittest", "unittest.mock", "unittest._log", "doctest",
    # internal helpers some stdlib functions import lazily
    "_colorize", "_suggestions", "compression", "annotationlib",
    "string.templatelib",
)

# Modules that cannot work in a sandbox without processes or network.  They
# are dropped from sys.modules after preloading (unittest.mock and doctest pull
# in asyncio, which pulls in socket, subprocess, selectors, ...), so
# `import socket` gives the natural ModuleNotFoundError at run time.  C modules
# compiled into the interpreter (_socket, select, _asyncio; see
# sys.builtin_module_names) stay importable; the host's WASI policy is what
# blocks the network.  asyncio is listed because asyncio.run() fails here
# (its event loop needs a socketpair).
UNAVAILABLE_PREFIXES = (
    "socket", "_socket", "ssl", "_ssl", "subprocess", "_posixsubprocess",
    "multiprocessing", "_multiprocessing", "concurrent.futures.process",
    "selectors", "select", "asyncio", "_asyncio",
)

_PRELOAD_FAILED = {}
for _name in PRELOAD:
    try:
        importlib.import_module(_name)
    except BaseException as _e:  # noqa: BLE001 - record and keep building
        _PRELOAD_FAILED[_name] = f"{type(_e).__name__}: {_e}"
for _name in list(sys.modules):
    if any(_name == p or _name.startswith(p + ".") for p in UNAVAILABLE_PREFIXES):
        del sys.modules[_name]

import builtins  # noqa: E402
import os  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402

from wit_world import exports  # noqa: E402
from wit_world.imports import environment  # noqa: E402
from wit_world.imports import exit as wasi_exit  # noqa: E402

_RUNNER_GLOBALS = globals()


def _flush_std():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:  # noqa: BLE001 - nothing sensible left to do
            pass


def _strip_runner_frames(tb):
    while tb is not None and tb.tb_frame.f_globals is _RUNNER_GLOBALS:
        tb = tb.tb_next
    return tb


def _print_exception(exc):
    """Print an uncaught exception the way the CPython executable does."""
    tb = _strip_runner_frames(exc.__traceback__)
    exc.__traceback__ = tb
    try:
        if sys.excepthook is not sys.__excepthook__:
            sys.excepthook(type(exc), exc, tb)
            return
    except BaseException as hook_exc:  # noqa: BLE001
        print("Error in sys.excepthook:", file=sys.stderr)
        traceback.print_exception(hook_exc, file=sys.stderr, colorize=False)
        print("\nOriginal exception was:", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr, colorize=False)


def _exit_code_from_system_exit(exc):
    """CPython's handling of SystemExit on POSIX (Python/pythonrun.c)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        # CPython converts with PyLong_AsLongLong (-1 on overflow), then
        # exit() keeps the low 8 bits: -1 -> 255, 256 -> 0, 2**100 -> 255.
        if not -(2**63) <= code < 2**63:
            code = -1
        return code & 0xFF
    try:
        sys.stderr.write(str(code) + "\n")
    except BaseException:  # noqa: BLE001
        pass
    return 1


def _run_atexit():
    import atexit
    try:
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 - CPython ignores these too
        pass


def _info():
    info = {
        "python": sys.version,
        "implementation": sys.implementation.name,
        "preload": list(PRELOAD),
        "preload_failed": _PRELOAD_FAILED,
        "modules": sorted(sys.modules),
    }
    sys.stdout.write(json.dumps(info, indent=1) + "\n")
    return 0


def _reopen_std_streams():
    """Give stdout/stderr a buffered binary layer.

    componentize-py pre-initialises CPython with PYTHONUNBUFFERED=1, so the
    snapshot's sys.stdout/sys.stderr are TextIOWrappers directly over a raw
    FileIO.  A raw write to WASI stdout may be short (8192 bytes was measured)
    and TextIOWrapper silently drops the rest.  io.BufferedWriter retries short
    writes.  Buffering matches CPython with a pipe: stdout block-buffered
    (8 KiB), stderr line-buffered with errors="backslashreplace".
    """
    import io
    for name, fd, line_buffering in (("stdout", 1, False), ("stderr", 2, True)):
        old = getattr(sys, name)
        new = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(fd, "w", closefd=False)),
            encoding=old.encoding, errors=old.errors, line_buffering=line_buffering)
        setattr(sys, name, new)
        setattr(sys, "__" + name + "__", new)


def _os_exit(status):
    """os._exit(n) for WASI: exit at once (no flush, no atexit), keep the code.

    The stock os._exit goes through wasi-libc's _Exit -> the preview1
    adapter's proc_exit, which reports every non-zero status as 1.
    """
    wasi_exit.exit_with_code(int(status) & 0xFF)


def _count_process_time_from_run_start():
    """Make the process-time clocks count from the start of this run.

    wasi-libc has no process CPU clock on WASI 0.2: it reports the monotonic clock
    minus the monotonic time it read at start-up.  That read happened in a
    constructor during componentize-py's pre-initialisation, under the build
    machine's clock, and is frozen in the snapshot: at run time (under corral's
    virtual clock) time.process_time() started at minus the length of the build's
    pre-initialisation (about -7 to -13 s).  Take that constant off, so the clocks
    start at zero and only count this run.
    """
    import time
    base = time.process_time_ns()
    times_base = os.times()
    process_time_ns = time.process_time_ns

    def _process_time_ns():
        return process_time_ns() - base

    def _process_time():
        return _process_time_ns() / 1e9

    def _times(_times=os.times):
        t = _times()
        return os.times_result((t.user - times_base.user, t.system, t.children_user,
                                t.children_system, t.elapsed))

    time.process_time_ns = _process_time_ns
    time.process_time = _process_time
    os.times = _times


def _compile(source, name):
    """Compile the program text the one way both a run and a check do."""
    return compile(source, name, "exec", dont_inherit=True)


_CHECK_MAX_LINE = 4096


def _check(name, source):
    """The compile check: compile SOURCE, run none of it (see the module doc)."""
    try:
        _compile(source, name)
    except SyntaxError as e:
        # No traceback frames: `python NAME` prints a SyntaxError in the main
        # file as just its location, the source line, the caret and the message.
        e.__traceback__ = None
        if isinstance(e.text, str) and len(e.text) > _CHECK_MAX_LINE:
            # A one-line program of megabytes: show the start of the line, not all of it.
            e.text = e.text[:_CHECK_MAX_LINE] + "\n"
            if isinstance(e.offset, int) and e.offset > _CHECK_MAX_LINE:
                e.offset = e.end_offset = None
        traceback.print_exception(e, file=sys.stderr, colorize=False)
        return 1
    except BaseException:  # noqa: BLE001 - not a syntax error: the run reports it
        return 3
    return 0


def _main():
    _count_process_time_from_run_start()
    _reopen_std_streams()
    os._exit = _os_exit
    argv = list(environment.get_arguments())
    if argv == ["--corral-info"]:
        return _info()
    if len(argv) == 3 and argv[0] == "--corral-compile":
        return _check(argv[1], argv[2])
    if len(argv) < 2:
        sys.stderr.write(
            "corral python runner: expected arguments [NAME, SOURCE, args...], "
            f"got {len(argv)} argument(s)\n")
        return 2
    name, source = argv[0], argv[1]
    sys.argv[:] = [name] + argv[2:]
    # The runner module itself is not importable by the program.
    sys.modules.pop(__name__, None)
    # Build-time sys.path entries (/python, /world, /0, ...) mean nothing at run
    # time.  Like `python NAME`, search only the program's directory (relative to
    # the WASI cwd, so it finds files only in a directory the host preopened), and
    # never write __pycache__ there.
    sys.path[:] = [os.path.dirname(name)]
    # (sys.path_importer_cache keeps the build-time finders: entries for paths no longer on
    # sys.path are never consulted, and clearing them would free their cached directory
    # listings, dirtying hundreds of copy-on-write heap pages on every run.)
    sys.dont_write_bytecode = True

    # Make tracebacks, inspect.getsource and doctest see the program text.
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)

    main = types.ModuleType("__main__")
    main.__file__ = name
    main.__builtins__ = builtins
    sys.modules["__main__"] = main

    try:
        code = _compile(source, name)
        exec(code, main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_code_from_system_exit(e)
    except BaseException as e:  # noqa: BLE001 - uncaught exception in the program
        _print_exception(e)
        status = 1
    return status


class Run(exports.Run):
    def run(self) -> None:
        try:
            status = _main()
        except BaseException as e:  # noqa: BLE001 - a bug in the runner itself
            try:
                sys.stderr.write("corral python runner: internal error\n")
                traceback.print_exception(e, file=sys.stderr, colorize=False)
            except BaseException:  # noqa: BLE001
                pass
            status = 1
        _run_atexit()
        _flush_std()
        if status != 0:
            wasi_exit.exit_with_code(status)
