#!/usr/bin/env python3
"""Tests for corral's JavaScript runner module (wasm32-wasip1 core module).

usage: python3 test_runner.py path/to/corral-js-runner.wasm
needs: pip install wasmtime   (tested with wasmtime-py 50.0.1)

The engine is configured the way corral configures wasmtime: fuel on, max_wasm_stack 512 KiB,
threads / multi-memory / memory64 / relaxed-SIMD / exceptions off. Prints one line per test
and a closing "N passed, N failed"; exit status 1 if anything failed.
"""
import os
import sys
import tempfile
import time

from wasmtime import Config, Engine, ExitTrap, Linker, Module, Store, Trap, WasiConfig, WasmtimeError

FUEL = 10_000_000_000
HOST_STACK = 512 * 1024


def make_engine(max_stack=HOST_STACK):
    c = Config()
    c.consume_fuel = True
    c.max_wasm_stack = max_stack
    c.wasm_threads = False
    c.wasm_multi_memory = False
    c.wasm_memory64 = False
    c.wasm_relaxed_simd = False
    c.wasm_exceptions = False
    c.wasm_simd = False  # the module uses no SIMD; prove it
    c.cranelift_nan_canonicalization = True
    return Engine(c)


class Result:
    def __init__(self, code, trap, out, err, fuel, t_inst, t_run):
        self.code, self.trap, self.out, self.err = code, trap, out, err
        self.fuel, self.t_inst, self.t_run = fuel, t_inst, t_run

    def __repr__(self):
        trap = (self.trap or "").split("Caused by:")[-1].strip()
        return f"code={self.code} trap={trap!r} out={self.out[:300]!r} err={self.err[:300]!r}"


def run(engine, module, src, args=(), stdin=b"", fuel=FUEL, mem=None, name="main.js", env=()):
    d = tempfile.mkdtemp(prefix="jsrt")
    paths = {k: os.path.join(d, k) for k in ("in", "out", "err")}
    with open(paths["in"], "wb") as f:
        f.write(stdin)
    w = WasiConfig()
    w.argv = [name, src, *args]
    w.env = list(env)
    w.stdin_file = paths["in"]
    w.stdout_file = paths["out"]
    w.stderr_file = paths["err"]
    store = Store(engine)
    store.set_wasi(w)
    store.set_fuel(fuel)
    if mem is not None:
        store.set_limits(memory_size=mem)
    linker = Linker(engine)
    linker.define_wasi()
    t0 = time.perf_counter()
    inst = linker.instantiate(store, module)
    t1 = time.perf_counter()
    code = trap = None
    try:
        inst.exports(store)["_start"](store)
        code = 0  # not reached by this runner: it always calls proc_exit
    except ExitTrap as e:
        code = e.code
    except (Trap, WasmtimeError) as e:
        trap = str(e)
    t2 = time.perf_counter()
    used = fuel - store.get_fuel()

    def rd(k):
        with open(paths[k], "rb") as f:
            return f.read().decode("utf-8", "replace")

    out, err = rd("out"), rd("err")
    for p in paths.values():
        os.unlink(p)
    os.rmdir(d)
    return Result(code, trap, out, err, used, t1 - t0, t2 - t1)


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# ---------------------------------------------------------------- module shape
@test
def module_imports_and_exports(eng, m):
    mods = {i.module for i in m.imports}
    assert mods == {"wasi_snapshot_preview1"}, mods
    exports = {e.name for e in m.exports}
    assert {"_start", "memory"} <= exports, exports
    names = sorted(i.name for i in m.imports)
    print("    imports:", ", ".join(names))
    print("    exports:", ", ".join(sorted(exports)))


# ---------------------------------------------------------------- output
@test
def hello_world(eng, m):
    r = run(eng, m, 'console.log("hello world")')
    assert (r.code, r.out, r.err) == (0, "hello world\n", ""), r


@test
def console_number_formatting(eng, m):
    r = run(eng, m, 'console.log(1, 1.5, -0, 1e21, 0.1+0.2, NaN, -Infinity, 2n**64n, 255/3, 1e-7)')
    assert r.out == "1 1.5 -0 1e+21 0.30000000000000004 NaN -Infinity 18446744073709551616n 85 1e-7\n", r


@test
def console_object_formatting(eng, m):
    src = r'''
console.log({a: 1, b: "x", c: [1, 2, {d: null}], "e-f": undefined});
console.log([1, , 3], [], {}, [[1, [2, [3, [4]]]]], {x: {y: {z: {w: 1}}}});
console.log(new Map([["k", 1]]), new Set([1, 2]), null, undefined, true, "raw string", ["quoted"]);
class P { constructor() { this.x = 1 } }
function f() {}
const o = {n: 1}; o.self = o;
console.log(new P(), f, () => 1, class Q {}, Symbol("s"), o);
console.log(new Uint8Array([1, 2]), new Date(0), /re/g, Object.create(null), [undefined, null]);
console.log("%s=%d (%i) %j %%", "x", 42.5, 42.5, {a: 1}, "extra");
'''
    r = run(eng, m, src)
    want = (
        "{ a: 1, b: 'x', c: [ 1, 2, { d: null } ], 'e-f': undefined }\n"
        "[ 1, <1 empty item>, 3 ] [] {} [ [ 1, [ 2, [Array] ] ] ] { x: { y: { z: [Object] } } }\n"
        "Map(1) { 'k' => 1 } Set(2) { 1, 2 } null undefined true raw string [ 'quoted' ]\n"
        "P { x: 1 } [Function: f] [Function (anonymous)] [class Q] Symbol(s) { n: 1, self: [Circular] }\n"
        "Uint8Array(2) [ 1, 2 ] 1970-01-01T00:00:00.000Z /re/g [Object: null prototype] {} [ undefined, null ]\n"
        "x=42.5 (42) {\"a\":1} % extra\n"
    )
    assert r.code == 0 and r.out == want, (r, want)


@test
def console_error_warn_to_stderr_and_print(eng, m):
    r = run(eng, m, 'console.log("o1"); console.error("e1", {a: 1}); console.warn("w1"); print("p", 1, [2]); '
                    'process.stdout.write("no newline"); process.stderr.write("E2")')
    assert r.code == 0 and r.out == "o1\np 1 [ 2 ]\nno newline" and r.err == "e1 { a: 1 }\nw1\nE2", r


@test
def error_objects_in_console_log(eng, m):
    r = run(eng, m, 'function boom(){ return new TypeError("bad") } console.log(boom())')
    assert r.code == 0 and r.out.startswith("TypeError: bad\n    at boom (main.js:1:"), r


@test
def unicode_output(eng, m):
    r = run(eng, m, 'console.log("héllo ✓ 😀", "😀".length)')
    assert r.out == "héllo ✓ 😀 2\n", r


# ---------------------------------------------------------------- input / args
@test
def read_stdin(eng, m):
    r = run(eng, m, 'const s = readStdin(); console.log(JSON.stringify(s)); console.log(JSON.stringify(readStdin()))',
            stdin="a b\nçé ✓\n".encode())
    assert r.code == 0 and r.out == '"a b\\nçé ✓\\n"\n""\n', r


@test
def read_line(eng, m):
    src = 'let l, a = []; while ((l = readLine()) !== null) a.push(l); console.log(JSON.stringify(a))'
    r = run(eng, m, src, stdin=b"1 2\r\n\nlast")
    assert r.code == 0 and r.out == '["1 2","","last"]\n', r


@test
def read_line_then_rest(eng, m):
    r = run(eng, m, 'const n = +readLine(); const rest = readStdin().trim().split(/\\s+/).map(Number); '
                    'console.log(n, rest.reduce((a, b) => a + b, 0))', stdin=b"3\n10 20\n30\n")
    assert r.out == "3 60\n", r


@test
def require_fs_stdin(eng, m):
    r = run(eng, m, 'const t = require("fs").readFileSync(0, "utf8"); console.log(t.trim().split("\\n").length); '
                    'try { require("path") } catch (e) { console.log(e.message.split(" (")[0]) }',
            stdin=b"x\ny\nz\n")
    assert r.out == "3\nCannot find module 'path'\n", r


@test
def node_style_stdin_shims(eng, m):
    src = ('const rl = require("readline").createInterface({input: process.stdin});'
           'const ls = []; rl.on("line", l => ls.push(l)); rl.on("close", () => console.log(JSON.stringify(ls)));'
           'console.log("sync first");')
    r = run(eng, m, src, stdin=b"a\r\nb\n\nc")
    assert (r.code, r.out) == (0, 'sync first\n["a","b","","c"]\n'), r
    src = ('const rl = require("node:readline").createInterface({input: process.stdin}); let n = 0;'
           'for await (const l of rl) n += Number(l); console.log(n);')
    r = run(eng, m, src, stdin=b"1\n2\n3\n")
    assert (r.code, r.out) == (0, "6\n"), r
    src = ('let d = ""; process.stdin.setEncoding("utf8"); process.stdin.on("data", c => d += c);'
           'process.stdin.on("end", () => console.log(JSON.stringify(d)));')
    r = run(eng, m, src, stdin=b"x y\n")
    assert (r.code, r.out) == (0, '"x y\\n"\n'), r
    r = run(eng, m, 'console.log(require("fs").readFileSync("/dev/stdin", "utf8").length)', stdin=b"abc")
    assert r.out == "3\n", r


@test
def script_args(eng, m):
    r = run(eng, m, 'console.log(JSON.stringify(scriptArgs), JSON.stringify(process.argv))',
            args=["a1", "two words", ""], name="prog.js")
    assert r.out == '["prog.js","a1","two words",""] ["qjs","prog.js","a1","two words",""]\n', r


@test
def globals_are_sloppy_script_globals(eng, m):
    r = run(eng, m, 'var g = 1; function h() {} implicit = 5; console.log(globalThis.g, typeof globalThis.h, implicit, this === globalThis)')
    assert r.out == "1 function 5 true\n", r


# ---------------------------------------------------------------- exit codes
@test
def exit_code_3(eng, m):
    r = run(eng, m, 'console.log("before"); process.stdout.write("partial"); exit(3); console.log("never")')
    assert (r.code, r.out) == (3, "before\npartial"), r


@test
def process_exit_and_exit_code(eng, m):
    assert run(eng, m, 'process.exit(4)').code == 4
    assert run(eng, m, 'process.exitCode = 5').code == 5
    assert run(eng, m, 'process.exitCode = 6; process.exit()').code == 6
    assert run(eng, m, 'exit()').code == 0
    assert run(eng, m, 'exit(256 + 7)').code == 7
    assert run(eng, m, 'Promise.resolve().then(() => exit(9)); console.log("sync")').code == 9


@test
def uncaught_error(eng, m):
    r = run(eng, m, 'function f() { throw new Error("x") }\nf()', name="solution.js")
    assert r.code == 1 and r.out == "", r
    assert r.err.startswith("Uncaught Error: x\n    at f (solution.js:1:"), r
    assert "solution.js:2" in r.err, r


@test
def uncaught_non_error_values(eng, m):
    r = run(eng, m, 'throw 42')
    assert (r.code, r.err) == (1, "Uncaught 42\n"), r
    r = run(eng, m, 'throw {a: [1]}')
    assert (r.code, r.err) == (1, "Uncaught { a: [ 1 ] }\n"), r


@test
def syntax_error(eng, m):
    r = run(eng, m, 'console.log("not reached");\nlet = ;')
    assert r.code == 1 and r.out == "" and r.err.startswith("Uncaught SyntaxError:") and "main.js:2" in r.err, r


@test
def output_before_error_is_kept(eng, m):
    r = run(eng, m, 'console.log("partial"); null.x')
    assert r.code == 1 and r.out == "partial\n" and "TypeError" in r.err, r


# ---------------------------------------------------------------- promises / timers
@test
def promises_run_to_completion(eng, m):
    src = ('Promise.resolve(1).then(v => console.log("then", v));'
           '(async () => { await null; console.log("async"); })();'
           'queueMicrotask(() => console.log("micro"));'
           'console.log("sync");')
    r = run(eng, m, src)
    assert (r.code, r.out) == (0, "sync\nthen 1\nasync\nmicro\n"), r


@test
def top_level_await(eng, m):
    r = run(eng, m, 'const v = await Promise.resolve(7); console.log(v * 6)')
    assert (r.code, r.out) == (0, "42\n"), r
    r = run(eng, m, 'await null; throw new Error("late")')
    assert r.code == 1 and r.err.startswith("Uncaught Error: late"), r
    r = run(eng, m, 'await new Promise(() => {})')
    assert r.code == 1 and "never settled" in r.err, r


@test
def unhandled_rejection(eng, m):
    r = run(eng, m, 'Promise.reject(new Error("nope")); console.log("after")')
    assert r.code == 1 and r.out == "after\n" and r.err.startswith("Uncaught (in promise) Error: nope"), r
    r = run(eng, m, 'async function f() { throw new RangeError("r") } f()')
    assert r.code == 1 and r.err.startswith("Uncaught (in promise) RangeError: r"), r
    r = run(eng, m, 'const p = Promise.reject(1); p.catch(e => console.log("caught", e))')
    assert (r.code, r.out, r.err) == (0, "caught 1\n", ""), r


@test
def timers_virtual_time(eng, m):
    src = ('setTimeout(() => console.log("b"), 10); setTimeout((x) => console.log("a", x), 5, "arg");'
           'Promise.resolve().then(() => console.log("micro"));'
           'let n = 0; const id = setInterval(() => { console.log("tick", ++n); if (n == 3) clearInterval(id) }, 1);'
           'const c = setTimeout(() => console.log("cancelled"), 1); clearTimeout(c);'
           'await new Promise(r => setTimeout(r, 100)); console.log("slept");')
    r = run(eng, m, src)
    assert (r.code, r.out) == (0, "micro\ntick 1\ntick 2\ntick 3\na arg\nb\nslept\n"), r
    r = run(eng, m, 'setTimeout(() => { throw new TypeError("in timer") }, 1)')
    assert r.code == 1 and r.err.startswith("Uncaught TypeError: in timer"), r
    assert "corral:prelude" not in r.err, r


# ---------------------------------------------------------------- resource limits
@test
def infinite_loop_stopped_by_fuel(eng, m):
    r = run(eng, m, 'console.log("start"); for (;;) {}', fuel=200_000_000)
    assert r.code is None and r.trap and "fuel" in r.trap, r
    assert r.out == "start\n", r


@test
def deep_recursion_is_a_js_error(eng, m):
    r = run(eng, m, 'function f(n) { return f(n + 1) + 1 } f(0)')
    assert r.trap is None and r.code == 1, r
    assert r.err.startswith("Uncaught RangeError: Maximum call stack size exceeded"), r
    src = ('let d = 0; function f() { d++; f() } try { f() } catch (e) { console.log(e.name, d > 100) }'
           'const o = {get x() { return this.x }}; try { o.x } catch (e) { console.log(e.name) }'
           'function g() { return [1].map(g) } try { g() } catch (e) { console.log(e.name) }')
    r = run(eng, m, src)
    assert (r.code, r.out) == (0, "RangeError true\nRangeError\nRangeError\n"), r


@test
def stack_limit_follows_corral_wasm_stack(eng, m):
    big = make_engine(max_stack=2 * 1024 * 1024)
    mb = Module.from_file(big, sys.argv[1])
    src = 'let d = 0; function f() { d++; f() } try { f() } catch (e) { console.log(e.name, d) }'
    small = run(eng, m, src)
    large = run(big, mb, src, env=[("CORRAL_WASM_STACK", str(2 * 1024 * 1024))])
    d_small, d_large = int(small.out.split()[1]), int(large.out.split()[1])
    print(f"    recursion depth: {d_small} (512 KiB, default) / {d_large} (2 MiB, CORRAL_WASM_STACK)")
    assert large.code == 0 and d_large > 3 * d_small, (small, large)


@test
def deep_recursion_in_c_code_traps_cleanly(eng, m):
    # The QuickJS parser and JSON code recurse in C without using the shadow stack, so the JS
    # limit cannot catch them; they end in wasmtime's stack-overflow trap (documented).
    r = run(eng, m, 'eval("(".repeat(100000) + "1" + ")".repeat(100000))')
    assert r.code is None and "call stack exhausted" in r.trap, r


@test
def out_of_memory_is_clean(eng, m):
    lim = 64 * 1024 * 1024
    r = run(eng, m, 'let a = []; for (;;) a.push(new Array(1e5).fill(1.5))', mem=lim)
    assert r.code == 1 and "out of memory" in r.err, r
    r = run(eng, m, 'let a = []; try { for (;;) a.push("x".repeat(1e6) + a.length) } catch (e) { a = null; console.log(String(e)) }', mem=lim)
    assert (r.code, r.out) == (0, "InternalError: out of memory\n"), r
    r = run(eng, m, 'new ArrayBuffer(1 << 30)', mem=lim)
    assert r.code == 1 and "out of memory" in r.err, r
    # many small objects: QuickJS may be unable to even allocate the error -> it throws null
    r = run(eng, m, 'let a = []; for (let i = 0; ; i++) a.push({i, s: "k" + i})', mem=lim)
    assert r.code == 1 and ("out of memory" in r.err), r


# ---------------------------------------------------------------- determinism-relevant
@test
def math_random_and_dates(eng, m):
    r = run(eng, m, 'const a = Array.from({length: 1000}, Math.random);'
                    'console.log(a.every(x => x >= 0 && x < 1), new Set(a).size, Math.random.name);'
                    'console.log(typeof Date.now(), new Date(0).getTimezoneOffset(), typeof performance.now())')
    assert r.out == "true 1000 random\nnumber 0 number\n", r
    t = run(eng, m, 'console.log(Date.now())')
    assert abs(int(t.out) - time.time() * 1000) < 60_000, t
    x = run(eng, m, 'console.log(Math.random())').out
    y = run(eng, m, 'console.log(Math.random())').out
    assert x != y, (x, y)  # seeded from WASI random_get, which wasmtime-py does not virtualise


# ---------------------------------------------------------------- timings (informational)
@test
def timings(eng, m):
    hello = [run(eng, m, 'console.log("hi")') for _ in range(5)]
    loop = run(eng, m, 'let s = 0; for (let i = 0; i < 1e6; i++) s += i; console.log(s)')
    assert loop.out == "499999500000\n", loop
    print("    instantiate %.2f ms, hello run %.2f ms (%d fuel), 1e6-iteration loop %.1f ms (%d fuel)" % (
        min(h.t_inst for h in hello) * 1e3, min(h.t_run for h in hello) * 1e3, hello[0].fuel,
        loop.t_run * 1e3, loop.fuel))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    eng = make_engine()
    t0 = time.perf_counter()
    m = Module.from_file(eng, sys.argv[1])
    print("compile %.2f s (%d bytes)" % (time.perf_counter() - t0, os.path.getsize(sys.argv[1])))
    passed = failed = 0
    for t in TESTS:
        try:
            t(eng, m)
            passed += 1
            print("ok  ", t.__name__)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL", t.__name__, "-", repr(e)[:2000])
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
