//! corral JavaScript runner: QuickJS-ng (through `rquickjs`) as a WASI preview-1 command.
//!
//! Contract (see README.md): `argv = [NAME, SOURCE, user_args...]`. SOURCE is evaluated as a
//! global script named NAME; `scriptArgs = [NAME, user_args...]`. Exit status: 0 on normal
//! completion, 1 on an uncaught exception / unhandled rejection, `n & 255` for `exit(n)`.

use std::cell::RefCell;
use std::ffi::CString;
use std::io::{BufRead, Read, Write};

use rquickjs::context::EvalOptions;
use rquickjs::prelude::Opt;
use rquickjs::{qjs, Context, Ctx, Function, Object, Persistent, Runtime, Value};

/// Native wasm stack the host grants (`wasmtime::Config::max_wasm_stack`), unless the host
/// passes the env var `CORRAL_WASM_STACK=<bytes>`. 512 KiB is wasmtime's default and corral's.
const DEFAULT_HOST_WASM_STACK: usize = 512 * 1024;
/// Shadow-stack bytes QuickJS may use = host wasm stack / 4. Measured over 30 recursion
/// shapes, QuickJS uses 0.31–0.52 bytes of shadow (linear-memory) stack per byte of native
/// wasm stack, so a quarter trips the JS check well before wasmtime's stack-overflow trap.
const NATIVE_PER_SHADOW: usize = 4;

fn js_stack_limit() -> usize {
    let host = std::env::var("CORRAL_WASM_STACK")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_HOST_WASM_STACK);
    (host / NATIVE_PER_SHADOW).max(16 * 1024)
}

extern "C" {
    /// wasi-libc: fills `buf` through WASI `random_get`.
    fn getentropy(buf: *mut u8, len: usize) -> i32;
}

thread_local! {
    /// Promises rejected without a handler (QuickJS host rejection tracker), with reasons.
    static UNHANDLED: RefCell<Vec<(Persistent<Value<'static>>, Persistent<Value<'static>>)>> =
        const { RefCell::new(Vec::new()) };
    static RNG: RefCell<u64> = const { RefCell::new(0) };
}

fn flush_all() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

fn exit_now(code: i32) -> ! {
    flush_all();
    std::process::exit(code)
}

/// One write (plus optional newline) to fd 1 or 2, flushed at once so output made before a
/// trap (fuel, OOM) reaches the host. stdout is flushed before stderr is written.
fn write_fd(fd: i32, bytes: &[u8], newline: bool) {
    fn put(w: &mut dyn Write, bytes: &[u8], newline: bool) {
        let _ = w.write_all(bytes);
        if newline {
            let _ = w.write_all(b"\n");
        }
        let _ = w.flush();
    }
    if fd == 2 {
        let _ = std::io::stdout().flush();
        put(&mut std::io::stderr().lock(), bytes, newline);
    } else {
        put(&mut std::io::stdout().lock(), bytes, newline);
    }
}

/// `write(fd, value, newline)` for the prelude: UTF-8 of `String(value)` without a Rust copy
/// (QuickJS hands out pure-ASCII strings without copying at all).
fn js_write<'js>(
    ctx: Ctx<'js>,
    fd: i32,
    v: Value<'js>,
    newline: Opt<bool>,
) -> rquickjs::Result<()> {
    let raw = ctx.as_raw().as_ptr();
    let mut len: usize = 0;
    // SAFETY: `v` is a live value of this context; the C string is freed below.
    unsafe {
        let p = qjs::JS_ToCStringLen(raw, &mut len, v.as_raw());
        if p.is_null() {
            return Err(rquickjs::Error::Exception);
        }
        write_fd(
            fd,
            std::slice::from_raw_parts(p as *const u8, len),
            newline.0.unwrap_or(false),
        );
        qjs::JS_FreeCString(raw, p);
    }
    Ok(())
}

fn eprint_raw(s: &str) {
    write_fd(2, s.as_bytes(), false);
}

/// Math.random: splitmix64 stream seeded once (first call) from WASI `random_get`.
fn next_random() -> f64 {
    RNG.with(|r| {
        let mut s = r.borrow_mut();
        if *s == 0 {
            let mut b = [0u8; 8];
            // SAFETY: valid buffer; getentropy allows up to 256 bytes.
            if unsafe { getentropy(b.as_mut_ptr(), 8) } != 0 {
                b = 0x9E37_79B9_7F4A_7C15u64.to_le_bytes();
            }
            *s = u64::from_le_bytes(b) | 1;
        }
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    })
}

/// QuickJS-ng disables its stack-overflow check on WASI (`update_stack_limit` forces
/// `stack_limit = 0`). Re-enable it: find `stack_size` inside the (opaque) JSRuntime by setting
/// two distinct values through the public API, then write `stack_limit = stack_top - limit`
/// into the field after `stack_top` (struct order: stack_size, stack_top, stack_limit).
/// Returns false (and changes nothing) if the layout is not the expected one.
unsafe fn enable_stack_limit(rt: *mut qjs::JSRuntime, limit: usize) -> bool {
    const A: usize = 0x5A17_C0DE;
    const B: usize = 0x0C0D_E5A1;
    const SCAN_WORDS: usize = 200; // JSRuntime is ~830 bytes on wasm32; stack_size is near byte 620
    let w = std::mem::size_of::<usize>();
    let words = rt as *mut usize;
    let here = &limit as *const usize as usize;
    qjs::JS_SetMaxStackSize(rt, A as _);
    let snap_a: Vec<usize> = (0..SCAN_WORDS).map(|i| *words.add(i)).collect();
    qjs::JS_SetMaxStackSize(rt, B as _);
    let mut found = None;
    for (i, &a) in snap_a.iter().enumerate().take(SCAN_WORDS - 2) {
        if a == A && *words.add(i) == B {
            if found.is_some() {
                found = None;
                break;
            }
            found = Some(i);
        }
    }
    qjs::JS_SetMaxStackSize(rt, 0);
    let Some(i) = found else { return false };
    let top = *words.add(i + 1);
    let cur_limit = *words.add(i + 2);
    // stack_top was taken in JS_NewRuntime, a few frames below main: it must be close to us.
    if cur_limit != 0 || top.abs_diff(here) > 64 * 1024 || w != 4 {
        return false;
    }
    // Stack-first layout: the shadow stack is [~0, top). Leave at least 64 KiB below the
    // limit as headroom for frames that run after a passed check and for unchecked C code.
    let limit = limit.min(top.saturating_sub(64 * 1024));
    if limit < 8 * 1024 {
        return false;
    }
    *words.add(i) = limit;
    *words.add(i + 2) = top - limit;
    true
}

/// `readLine()`: next stdin line without its `\n` / `\r\n`, or `null` at end of input.
fn js_read_line<'js>(ctx: Ctx<'js>) -> rquickjs::Result<Value<'js>> {
    let mut buf = Vec::new();
    match std::io::stdin().lock().read_until(b'\n', &mut buf) {
        Ok(0) | Err(_) => Ok(Value::new_null(ctx)),
        Ok(_) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            let s = String::from_utf8_lossy(&buf);
            rquickjs::String::from_str(ctx, &s).map(|s| s.into_value())
        }
    }
}

const PRELUDE: &str = r#####"
(function (native) {
  "use strict";
  const G = globalThis;
  const { write, readAll, readLine, exit: nativeExit, random } = native;
  const defProp = (o, k, v) => Object.defineProperty(o, k, { value: v, writable: true, configurable: true, enumerable: false });

  // ---------- value formatting (Node-like, always single line) ----------
  const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  function quote(s) {
    return "'" + s.replace(/[\\'\n\r\t\b\f\v\0]/g, c => ({ "\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\0": "\\0" })[c]) + "'";
  }
  function fmtKey(k) {
    return typeof k === "symbol" ? "[" + k.toString() + "]" : (IDENT.test(k) ? k : quote(k));
  }
  function errorText(e) {
    let head;
    try { head = String(e); } catch (_) { head = "Error"; }
    let st;
    try { st = e.stack; } catch (_) { st = undefined; }
    if (typeof st !== "string" || st === "") return head;
    st = st.split("\n").filter(l => !l.includes("corral:prelude")).join("\n");
    if (st.startsWith(head)) return st.replace(/\n+$/, "");
    return head + "\n" + st.replace(/\n+$/, "");
  }
  function ctorName(o) {
    try {
      const p = Object.getPrototypeOf(o);
      if (p === null) return null;
      const c = p.constructor;
      return typeof c === "function" && typeof c.name === "string" ? c.name : "";
    } catch (_) { return ""; }
  }
  const MAX_ITEMS = 100;
  function inspect(v, depth, seen) {
    switch (typeof v) {
      case "string": return quote(v);
      case "number": return Object.is(v, -0) ? "-0" : String(v);
      case "bigint": return String(v) + "n";
      case "boolean": case "undefined": return String(v);
      case "symbol": return v.toString();
      case "function": {
        let isClass = false;
        try { isClass = /^class\b/.test(Function.prototype.toString.call(v)); } catch (_) {}
        const n = v.name ? (isClass ? "[class " + v.name + "]" : "[Function: " + v.name + "]") : (isClass ? "[class (anonymous)]" : "[Function (anonymous)]");
        return n;
      }
    }
    if (v === null) return "null";
    if (seen.includes(v)) return "[Circular]";
    if (v instanceof Error) return errorText(v);
    if (v instanceof Date) return isNaN(v.getTime()) ? "Invalid Date" : v.toISOString();
    if (v instanceof RegExp) return String(v);
    if (v instanceof Number || v instanceof String || v instanceof Boolean) {
      return "[" + ctorName(v) + ": " + inspect(v.valueOf(), depth, seen) + "]";
    }
    if (typeof Promise === "function" && v instanceof Promise) return "Promise {}";
    if (v instanceof WeakMap) return "WeakMap { <items unknown> }";
    if (v instanceof WeakSet) return "WeakSet { <items unknown> }";
    if (v instanceof ArrayBuffer) return "ArrayBuffer { byteLength: " + v.byteLength + " }";
    const isArr = Array.isArray(v);
    const isTA = ArrayBuffer.isView(v) && !(v instanceof DataView);
    const name = ctorName(v);
    if (depth > 2) {
      if (isArr) return "[Array]";
      return "[" + (name || (name === null ? "Object: null prototype" : "Object")) + "]";
    }
    seen.push(v);
    try {
      const parts = [];
      let prefix = "";
      let open = "{", close = "}";
      if (isArr || isTA) {
        open = "["; close = "]";
        const n = v.length;
        let holes = 0;
        const flushHoles = () => { if (holes) { parts.push("<" + holes + " empty item" + (holes > 1 ? "s" : "") + ">"); holes = 0; } };
        for (let i = 0; i < n && parts.length < MAX_ITEMS; i++) {
          if (isArr && !Object.prototype.hasOwnProperty.call(v, i)) { holes++; continue; }
          flushHoles();
          parts.push(inspect(v[i], depth + 1, seen));
        }
        flushHoles();
        if (n > MAX_ITEMS) parts.push("... " + (n - MAX_ITEMS) + " more item" + (n - MAX_ITEMS > 1 ? "s" : ""));
        if (isTA) prefix = name + "(" + n + ") ";
        else if (name !== "Array") prefix = (name === null ? "[Array: null prototype]" : name + "(" + n + ")") + " ";
        for (const k of Object.keys(v)) {
          if (String(k >>> 0) === k && (k >>> 0) < 4294967295) continue;
          parts.push(fmtKey(k) + ": " + inspect(v[k], depth + 1, seen));
        }
      } else if (v instanceof Map) {
        prefix = name + "(" + v.size + ") ";
        let i = 0;
        for (const [k, x] of v) {
          if (i++ >= MAX_ITEMS) { parts.push("... " + (v.size - MAX_ITEMS) + " more items"); break; }
          parts.push(inspect(k, depth + 1, seen) + " => " + inspect(x, depth + 1, seen));
        }
      } else if (v instanceof Set) {
        prefix = name + "(" + v.size + ") ";
        let i = 0;
        for (const x of v) {
          if (i++ >= MAX_ITEMS) { parts.push("... " + (v.size - MAX_ITEMS) + " more items"); break; }
          parts.push(inspect(x, depth + 1, seen));
        }
      } else {
        if (name === null) prefix = "[Object: null prototype] ";
        else if (name !== "Object") prefix = (name || "Object") + " ";
        const keys = Object.keys(v);
        for (const s of Object.getOwnPropertySymbols(v)) {
          if (Object.prototype.propertyIsEnumerable.call(v, s)) keys.push(s);
        }
        for (const k of keys) {
          let d;
          try { d = Object.getOwnPropertyDescriptor(v, k); } catch (_) { d = undefined; }
          let s;
          if (d && (d.get || d.set)) s = d.get ? (d.set ? "[Getter/Setter]" : "[Getter]") : "[Setter]";
          else s = inspect(d ? d.value : v[k], depth + 1, seen);
          parts.push(fmtKey(k) + ": " + s);
        }
      }
      if (parts.length === 0) return prefix + open + close;
      return prefix + open + " " + parts.join(", ") + " " + close;
    } finally {
      seen.pop();
    }
  }
  function fmtTop(v) { return typeof v === "string" ? v : inspect(v, 0, []); }
  function format(args) {
    if (args.length === 0) return "";
    let first = args[0];
    let rest = 1;
    let out;
    if (typeof first === "string" && args.length > 1 && first.includes("%")) {
      out = first.replace(/%([sdifjoOc%])/g, (m, c) => {
        if (c === "%") return "%";
        if (rest >= args.length) return m;
        const a = args[rest++];
        switch (c) {
          case "s": return typeof a === "string" ? a : (typeof a === "bigint" ? a + "n" : inspect(a, 1, []));
          case "d": case "i": {
            if (typeof a === "bigint") return a + "n";
            const n = Number(a);
            return c === "i" ? String(Math.trunc(n)) : (Object.is(n, -0) ? "-0" : String(n));
          }
          case "f": return String(parseFloat(a));
          case "j": try { return JSON.stringify(a); } catch (_) { return "[Circular]"; }
          case "o": case "O": return inspect(a, 0, []);
          case "c": return "";
        }
        return m;
      });
    } else {
      out = fmtTop(first);
    }
    for (let i = rest; i < args.length; i++) out += " " + fmtTop(args[i]);
    return out;
  }

  // ---------- console / print ----------
  const out = (...a) => { write(1, format(a), true); };
  const err = (...a) => { write(2, format(a), true); };
  const counts = new Map();
  const console = {
    log: out, info: out, debug: out,
    error: err, warn: err, trace: err,
    dir: (v) => { write(1, inspect(v, 0, []), true); },
    assert: (cond, ...a) => { if (!cond) err(...(a.length ? ["Assertion failed:", ...a] : ["Assertion failed"])); },
    count: (label = "default") => { const n = (counts.get(label) || 0) + 1; counts.set(label, n); out(label + ": " + n); },
    table: out, group: out, groupEnd: () => {}, time: () => {}, timeEnd: () => {},
  };
  defProp(G, "console", console);
  defProp(G, "print", (...a) => { write(1, a.length === 1 ? fmtTop(a[0]) : a.map(fmtTop).join(" "), true); });

  // ---------- stdin ----------
  defProp(G, "readStdin", () => readAll());
  defProp(G, "readLine", () => readLine());

  // ---------- timers: virtual time, no real waiting ----------
  const timers = [];
  let seq = 0, vnow = 0;
  function addTimer(fn, ms, args, repeat) {
    if (typeof fn !== "function") throw new TypeError("callback must be a function");
    ms = Number(ms); if (!(ms >= 1)) ms = repeat ? 1 : 0;
    const id = ++seq;
    timers.push({ id, t: vnow + ms, ms, fn, args, repeat });
    return id;
  }
  function clearTimer(id) {
    const i = timers.findIndex(x => x.id === id);
    if (i >= 0) timers.splice(i, 1);
  }
  defProp(G, "setTimeout", (fn, ms, ...args) => addTimer(fn, ms, args, false));
  defProp(G, "setInterval", (fn, ms, ...args) => addTimer(fn, ms, args, true));
  defProp(G, "setImmediate", (fn, ...args) => addTimer(fn, 0, args, false));
  defProp(G, "clearTimeout", clearTimer);
  defProp(G, "clearInterval", clearTimer);
  defProp(G, "clearImmediate", clearTimer);

  // ---------- Node-style stdin shims: require('fs'|'readline'), process.stdin ----------
  // All of them read the whole of stdin (via readAll) and deliver it from a timer, i.e. after
  // the script body has run, as Node would.
  function stdinLines() {
    const t = readAll();
    if (t === "") return [];
    const ls = t.split("\n");
    if (ls[ls.length - 1] === "") ls.pop();
    return ls.map(l => l.endsWith("\r") ? l.slice(0, -1) : l);
  }
  function emitter() {
    const hs = new Map();
    return {
      on(ev, fn) { if (!hs.has(ev)) hs.set(ev, []); hs.get(ev).push(fn); return this; },
      emit(ev, ...a) { for (const f of hs.get(ev) || []) f(...a); },
    };
  }
  const stdinPaths = new Set([0, "0", "/dev/stdin", "/proc/self/fd/0"]);
  const fs = {
    readFileSync(path, opts) {
      if (!stdinPaths.has(path)) {
        const e = new Error("ENOENT: no such file or directory, open '" + String(path) + "' (corral JS runner: only stdin (0 or '/dev/stdin') can be read)");
        e.code = "ENOENT";
        throw e;
      }
      return readAll();
    },
  };
  const readline = {
    createInterface() {
      const em = emitter();
      let started = false, closed = false;
      const start = () => {
        if (started) return;
        started = true;
        addTimer(() => {
          for (const l of stdinLines()) { if (closed) break; em.emit("line", l); }
          rl.close();
        }, 0, [], false);
      };
      const rl = {
        on(ev, fn) { em.on(ev, fn); start(); return rl; },
        once(ev, fn) { return rl.on(ev, fn); },
        close() { if (!closed) { closed = true; em.emit("close"); } },
        [Symbol.asyncIterator]() {
          started = true;
          const ls = stdinLines();
          let i = 0;
          return {
            next: async () => i < ls.length ? { value: ls[i++], done: false } : { value: undefined, done: true },
            return: async () => ({ value: undefined, done: true }),
            [Symbol.asyncIterator]() { return this; },
          };
        },
      };
      return rl;
    },
  };
  const modules = { fs, "node:fs": fs, readline, "node:readline": readline };
  defProp(G, "require", (name) => {
    if (Object.prototype.hasOwnProperty.call(modules, name)) return modules[name];
    throw new Error("Cannot find module '" + String(name) + "' (corral JS runner: no Node.js modules; only 'fs' (readFileSync of stdin) and 'readline' (createInterface on stdin))");
  });
  const stdinEm = emitter();
  let stdinStarted = false;
  const stdin = {
    fd: 0,
    setEncoding() { return stdin; }, resume() { return stdin; }, pause() { return stdin; },
    on(ev, fn) {
      stdinEm.on(ev, fn);
      if (!stdinStarted) {
        stdinStarted = true;
        addTimer(() => { const t = readAll(); if (t !== "") stdinEm.emit("data", t); stdinEm.emit("end"); stdinEm.emit("close"); }, 0, [], false);
      }
      return stdin;
    },
  };

  // ---------- exit / process ----------
  const toCode = (c) => (c === undefined || c === null) ? 0 : (Number(c) | 0) & 255;
  const process = {
    argv: [], env: {}, exitCode: undefined, platform: "wasi", stdin,
    exit(c) { nativeExit(toCode(c === undefined ? process.exitCode : c)); },
    stdout: { write(s) { write(1, String(s)); return true; } },
    stderr: { write(s) { write(2, String(s)); return true; } },
  };
  defProp(G, "process", process);
  defProp(G, "exit", (c) => nativeExit(toCode(c)));

  // ---------- Math.random through WASI random_get ----------
  defProp(Math, "random", { random() { return random(); } }.random);

  return {
    setArgs(name, args) {
      defProp(G, "scriptArgs", [name, ...args]);
      process.argv = ["qjs", name, ...args];
    },
    runNextTimer() {
      if (timers.length === 0) return false;
      let b = 0;
      for (let i = 1; i < timers.length; i++) {
        const x = timers[i], y = timers[b];
        if (x.t < y.t || (x.t === y.t && x.id < y.id)) b = i;
      }
      const tm = timers[b];
      timers.splice(b, 1);
      vnow = tm.t;
      if (tm.repeat) { tm.t = vnow + tm.ms; timers.push(tm); }
      tm.fn(...tm.args);
      return true;
    },
    exitCode() { return process.exitCode === undefined ? 0 : toCode(process.exitCode); },
    describe(v) { return v instanceof Error ? errorText(v) : fmtTop(v); },
  };
})
"#####;

/// Text for an uncaught value: via the prelude's formatter, with a Rust fallback
/// (e.g. when the JS heap is exhausted).
fn describe<'js>(ctx: &Ctx<'js>, hooks: &Object<'js>, v: Value<'js>) -> String {
    // QuickJS throws null when it runs out of memory while building an error object.
    if v.is_null() {
        return "null (QuickJS throws null when it is out of memory)".into();
    }
    if let Ok(f) = hooks.get::<_, Function>("describe") {
        if let Ok(s) = f.call::<_, String>((v.clone(),)) {
            return s;
        }
        let _ = ctx.catch();
    }
    if let Some(s) = v.as_string().and_then(|s| s.to_string().ok()) {
        return s;
    }
    if let Some(o) = v.as_object() {
        let msg = o.get::<_, String>("message").unwrap_or_default();
        let stack = o.get::<_, String>("stack").unwrap_or_default();
        let _ = ctx.catch();
        return format!("Error: {msg}\n{stack}");
    }
    format!("{v:?}")
}

fn fail<'js>(ctx: &Ctx<'js>, hooks: &Object<'js>, prefix: &str, v: Value<'js>) -> ! {
    let text = describe(ctx, hooks, v);
    eprint_raw(&format!("{prefix}{text}\n"));
    exit_now(1)
}

/// Take the pending exception and end the process with status 1.
fn fail_pending<'js>(ctx: &Ctx<'js>, hooks: &Object<'js>) -> ! {
    let e = ctx.catch();
    fail(ctx, hooks, "Uncaught ", e)
}

fn run() -> i32 {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.len() < 2 {
        eprint_raw("corral-js-runner: usage: NAME SOURCE [ARGS...]\n");
        return 2;
    }
    let name = args[0].clone();
    let source = args[1].clone();
    let user_args: Vec<String> = args[2..].to_vec();

    let rt = match Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprint_raw(&format!("corral-js-runner: cannot create runtime: {e}\n"));
            return 1;
        }
    };
    // No QuickJS heap limit: the host bounds linear memory; malloc failure → InternalError
    // "out of memory" (or a trap if Rust-side allocation fails). See README "Memory".
    rt.set_memory_limit(0);
    rt.set_host_promise_rejection_tracker(Some(Box::new(
        |ctx: Ctx<'_>, promise: Value<'_>, reason: Value<'_>, is_handled: bool| {
            UNHANDLED.with(|u| {
                let mut u = u.borrow_mut();
                if is_handled {
                    u.retain(|(p, _)| {
                        p.clone()
                            .restore(&ctx)
                            .map(|p| p != promise)
                            .unwrap_or(true)
                    });
                } else {
                    u.push((
                        Persistent::save(&ctx, promise),
                        Persistent::save(&ctx, reason),
                    ));
                }
            });
        },
    )));
    let ctx = match Context::full(&rt) {
        Ok(c) => c,
        Err(e) => {
            eprint_raw(&format!("corral-js-runner: cannot create context: {e}\n"));
            return 1;
        }
    };
    // If the JSRuntime layout is not the expected one this is a no-op and deep recursion ends
    // in a wasm trap instead (test_runner.py checks that the limit is active).
    let _ = unsafe { enable_stack_limit(ctx.get_runtime_ptr(), js_stack_limit()) };

    ctx.with(|ctx| -> i32 {
        // ---- native functions for the prelude ----
        let native = Object::new(ctx.clone()).expect("object");
        native
            .set("write", Function::new(ctx.clone(), js_write))
            .unwrap();
        native
            .set(
                "readAll",
                Function::new(ctx.clone(), || -> String {
                    let mut buf = Vec::new();
                    let _ = std::io::stdin().lock().read_to_end(&mut buf);
                    String::from_utf8(buf)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                }),
            )
            .unwrap();
        native
            .set("readLine", Function::new(ctx.clone(), js_read_line))
            .unwrap();
        native
            .set(
                "exit",
                Function::new(ctx.clone(), |code: i32| -> () { exit_now(code) }),
            )
            .unwrap();
        native
            .set("random", Function::new(ctx.clone(), next_random))
            .unwrap();

        let mut opts = EvalOptions::default();
        opts.filename = Some("corral:prelude".into());
        opts.strict = false;
        let setup: Function = match ctx.eval_with_options(PRELUDE, opts) {
            Ok(f) => f,
            Err(_) => {
                let e = ctx.catch();
                eprint_raw(&format!("corral-js-runner: prelude failed: {e:?}\n"));
                return 1;
            }
        };
        let hooks: Object = match setup.call((native,)) {
            Ok(h) => h,
            Err(_) => {
                let e = ctx.catch();
                eprint_raw(&format!("corral-js-runner: prelude failed: {e:?}\n"));
                return 1;
            }
        };
        let set_args: Function = hooks.get("setArgs").unwrap();
        if set_args.call::<_, ()>((name.clone(), user_args)).is_err() {
            fail_pending(&ctx, &hooks);
        }

        // ---- the program: global script, top-level await allowed (JS_EVAL_FLAG_ASYNC) ----
        let src = match CString::new(source) {
            Ok(s) => s,
            Err(_) => {
                eprint_raw("SyntaxError: source contains a NUL byte\n");
                return 1;
            }
        };
        let fname = CString::new(name.replace('\0', "?")).unwrap();
        let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_ASYNC) as i32;
        let raw = unsafe {
            qjs::JS_Eval(
                ctx.as_raw().as_ptr(),
                src.as_ptr(),
                src.as_bytes().len() as _,
                fname.as_ptr(),
                flags,
            )
        };
        let main_promise = unsafe { Value::from_raw(ctx.clone(), raw) };
        if main_promise.is_exception() {
            // syntax errors (and anything thrown before the async body starts)
            fail_pending(&ctx, &hooks);
        }

        let run_next_timer: Function = hooks.get("runNextTimer").unwrap();
        let rt_ptr = unsafe { qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) };
        loop {
            // drain the job queue
            loop {
                let mut jctx = std::mem::MaybeUninit::<*mut qjs::JSContext>::uninit();
                let r = unsafe { qjs::JS_ExecutePendingJob(rt_ptr, jctx.as_mut_ptr()) };
                if r == 0 {
                    break;
                }
                if r < 0 {
                    fail_pending(&ctx, &hooks);
                }
            }
            // the script itself (its async-eval promise) failed
            if let Some(p) = main_promise.as_promise() {
                if p.state() == rquickjs::promise::PromiseState::Rejected {
                    let reason = unsafe {
                        Value::from_raw(
                            ctx.clone(),
                            qjs::JS_PromiseResult(ctx.as_raw().as_ptr(), main_promise.as_raw()),
                        )
                    };
                    fail(&ctx, &hooks, "Uncaught ", reason);
                }
            }
            // promises rejected with no handler by the time the queue drained
            let pending: Vec<(Value, Value)> = UNHANDLED.with(|u| {
                u.borrow()
                    .iter()
                    .filter_map(|(p, r)| {
                        Some((p.clone().restore(&ctx).ok()?, r.clone().restore(&ctx).ok()?))
                    })
                    .collect()
            });
            if let Some((_, reason)) = pending.into_iter().find(|(p, _)| p != &main_promise) {
                fail(&ctx, &hooks, "Uncaught (in promise) ", reason);
            }
            match run_next_timer.call::<_, bool>(()) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(_) => fail_pending(&ctx, &hooks),
            }
        }
        if let Some(p) = main_promise.as_promise() {
            if p.state() == rquickjs::promise::PromiseState::Pending {
                eprint_raw(
                    "Error: top-level await never settled (no pending jobs or timers left)\n",
                );
                return 1;
            }
        }
        let code: Function = hooks.get("exitCode").unwrap();
        code.call::<_, i32>(()).unwrap_or(0)
    })
}

fn main() {
    let code = run();
    exit_now(code)
}
