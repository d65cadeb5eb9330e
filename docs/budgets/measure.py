"""Fuel per second of native CPU time, per language (docs/budgets.md).

    cd docs/budgets && python3 measure.py CORRAL PROGRAM...

For each program: the best of three native runs' CPU time (user + system: the machines
here are shared, so CPU time is steadier than wall time) with `python3`, `node` or
`clang -O2`, then the fuel corral spends on it under `unbounded.toml` (limits out of the
way). Fuel is deterministic; the native times are not.
"""
import json, resource, subprocess, sys
CORRAL = sys.argv[1]
progs = sys.argv[2:]
def cpu(cmd):
    best = None
    for _ in range(3):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        best = t if best is None else min(best, t)
    return best
for p in progs:
    ext = p.rsplit(".", 1)[1]
    if ext == "py": native = ["python3", p]
    elif ext == "js": native = ["node", p]
    else:
        subprocess.run(["clang", "-O2", "-o", p + ".bin", p], check=True)
        native = ["./" + p + ".bin"]
    t = cpu(native)
    out = subprocess.run([CORRAL, "run", p, "--json", "--no-record", "--policy", "unbounded.toml"], capture_output=True)
    rep = json.loads(out.stdout)
    print(f"{p:10} native_cpu_s={t:.3f} corral_verdict={rep['verdict']} fuel={rep['fuel_consumed']} corral_wall_ms={rep['wall_time_ms']:.0f}", flush=True)
