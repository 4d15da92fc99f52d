"""Speed of the compiled engine: events and simulated faults per second per core, side by side with
the same model as a plain-Python event loop, against the ceiling of a minimal compiled event loop.

    python benchmarks/bench_engine.py            # every preset, ~3-5 min on a quiet core
    python benchmarks/bench_engine.py --quick    # shorter runs, no cold compile, ~1 min

Sections (numbers only, no assertion on time; issue 2 §7 states the targets):

1. numba compile: a fresh process with an empty numba cache (``NUMBA_CACHE_DIR`` pointed at a
   temporary directory, so the project's cache is left alone) against a fresh process that loads
   that cache, against a warm call in the same process.
2. reference loops: a minimal ``@njit`` binary-heap M/M/1 event loop (arrivals and departures, a
   SplitMix64 generator inline: ``reference/queueing.md`` §3.1) and the same loop in plain Python
   (``heapq``, ``random``): the ceiling and the floor of an event loop on this machine.
3. every preset under ``mainline`` and ``android_warm_start`` under every policy: the engine
   (``simulate.run_policy``; events ``I_EVENTS``, faults ``I_FAULTS_DONE``, warm-up included in
   both) and ``plain_python_engine.py`` on the same scenario, policy, seed and run length.
4. (``--profile``, on by default without ``--quick``) what an event costs: the event mix and the
   random draws per fault (counted in the plain-Python twin, which runs the same model), and the
   engine's time per event as features are switched off. ``--perf`` adds a function-level profile
   of the compiled engine with Linux ``perf`` (one extra cold compile, ~1 min).

Rates are per core: CPU time of the running thread (``time.thread_time``), so that a run shared
with other work on the machine is not charged for it. The engine's fixed cost per call (allocating
the state: a run of one event) is measured and subtracted. Wall-clock rates are printed too.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from numba import njit

import faultlock
from faultlock.model.montecarlo import simulate as mc_simulate
from faultlock.model.montecarlo import state as mc_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plain_python_engine as pp

TARGET_EVENTS = 10e6
TARGET_FAULTS = 1e6
TARGET_RATIO = 25.0


# ---- 1. compile time ---------------------------------------------------------------------------
_CHILD = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter(); c0 = time.process_time()
    import numpy as np, faultlock
    from faultlock.model.montecarlo import simulate as sm
    t1 = time.perf_counter(); c1 = time.process_time()
    s = faultlock.Scenario.preset("android_warm_start")
    kw = dict(operations=200, batches=20, warmup=0.2, max_events=10**9, max_time=np.inf,
              check=False)
    sm.run_policy(s, "mainline", np.random.SeedSequence(0), **kw)
    t2 = time.perf_counter(); c2 = time.process_time()
    sm.run_policy(s, "mainline", np.random.SeedSequence(0), **kw)
    t3 = time.perf_counter(); c3 = time.process_time()
    print(json.dumps(dict(import_wall=t1 - t0, import_cpu=c1 - c0, first_wall=t2 - t1,
                          first_cpu=c2 - c1, second_wall=t3 - t2, second_cpu=c3 - c2)))
""")


def _child_times(env) -> dict | None:
    run = subprocess.run([sys.executable, "-c", _CHILD], env=env, check=False,
                         capture_output=True, text=True)
    if run.returncode != 0:
        tail = run.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"  the child process failed: {tail[0]}")
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def compile_times(cold: bool) -> dict:
    """``cold``: a private, empty cache, then a fresh process loading it. Otherwise the project's
    own cache, warmed in this process first, loaded by a fresh process."""
    results = {}
    if cold:
        with tempfile.TemporaryDirectory(prefix="faultlock-numba-cache-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for label in ("cold (empty cache)", "cached (fresh process)"):
                r = _child_times(env)
                if r is not None:
                    results[label] = r
        return results
    scenario = faultlock.Scenario.preset("android_warm_start")
    _numba_run(scenario, "mainline", 200, 0)          # compile or load into the project cache
    r = _child_times(dict(os.environ))
    if r is not None:
        results["cached (fresh process)"] = r
    return results


# ---- 2. reference event loops ------------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always")
def _u01(state):
    x = state[0] + _GOLDEN
    state[0] = x
    z = (x ^ (x >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (np.float64(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def _push(times, kinds, n, t, k):
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if times[parent] <= t:
            break
        times[i] = times[parent]
        kinds[i] = kinds[parent]
        i = parent
    times[i] = t
    kinds[i] = k
    return n + 1


@njit(inline="always")
def _pop(times, kinds, n):
    t0 = times[0]
    k0 = kinds[0]
    n -= 1
    t = times[n]
    k = kinds[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and times[child + 1] < times[child]:
            child += 1
        if times[child] >= t:
            break
        times[i] = times[child]
        kinds[i] = kinds[child]
        i = child
    if n > 0:
        times[i] = t
        kinds[i] = k
    return t0, k0, n


@njit
def mm1_numba(customers, lam, mu, seed):
    """M/M/1 FCFS through a binary-heap calendar: returns (events, mean wait in queue)."""
    state = np.array([seed], dtype=np.uint64)
    times = np.empty(16)
    kinds = np.empty(16, dtype=np.int64)
    arrivals = np.empty(64)        # ring of arrival times of the customers in the system
    cap = 64
    head = 0
    in_system = 0
    n = _push(times, kinds, 0, -math.log(_u01(state)) / lam, 0)
    served = 0
    events = 0
    wait_sum = 0.0
    while served < customers:
        t, kind, n = _pop(times, kinds, n)
        events += 1
        if kind == 0:
            if in_system == cap:   # grow the ring
                bigger = np.empty(2 * cap)
                for j in range(cap):
                    bigger[j] = arrivals[(head + j) % cap]
                arrivals = bigger
                head = 0
                cap *= 2
            arrivals[(head + in_system) % cap] = t
            in_system += 1
            if in_system == 1:
                n = _push(times, kinds, n, t - math.log(_u01(state)) / mu, 1)
            n = _push(times, kinds, n, t - math.log(_u01(state)) / lam, 0)
        else:
            in_system -= 1
            served += 1
            head = (head + 1) % cap
            if in_system > 0:
                wait_sum += t - arrivals[head]      # the next customer starts service now
                n = _push(times, kinds, n, t - math.log(_u01(state)) / mu, 1)
    return events, wait_sum / served


def mm1_python(customers, lam, mu, seed):
    """The same loop, lean plain Python: heapq of tuples, random.random bound to a local."""
    rnd = random.Random(seed).random
    log = math.log
    heap = [(-log(rnd()) / lam, 0)]
    heappush = heapq.heappush
    heappop = heapq.heappop
    from collections import deque
    queue = deque()
    served = events = 0
    wait_sum = 0.0
    while served < customers:
        t, kind = heappop(heap)
        events += 1
        if kind == 0:
            queue.append(t)
            if len(queue) == 1:
                heappush(heap, (t - log(rnd()) / mu, 1))
            heappush(heap, (t - log(rnd()) / lam, 0))
        else:
            queue.popleft()
            served += 1
            if queue:
                wait_sum += t - queue[0]
                heappush(heap, (t - log(rnd()) / mu, 1))
    return events, wait_sum / served


def reference(customers_numba, customers_python):
    lam, mu = 0.8, 1.0
    mm1_numba(1000, lam, mu, 1)                     # compile
    best = math.inf
    for r in range(3):
        c = time.thread_time()
        events, wq = mm1_numba(customers_numba, lam, mu, 12345 + r)
        best = min(best, time.thread_time() - c)
    numba_rate = events / best
    c = time.thread_time()
    pevents, pwq = mm1_python(customers_python, lam, mu, 1)
    python_rate = pevents / (time.thread_time() - c)
    return dict(numba_events_per_s=numba_rate, numba_wq=wq, numba_events=events,
                python_events_per_s=python_rate, python_wq=pwq, python_events=pevents,
                theory_wq=lam / (mu * (mu - lam)))


# ---- 3. the engine and the plain-Python twin ---------------------------------------------------
def _numba_run(scenario, policy, operations, seed, max_events=10**12):
    c = time.thread_time()
    S, summary = mc_simulate.run_policy(scenario, policy, np.random.SeedSequence(seed),
                                        operations=operations, batches=20, warmup=0.2,
                                        max_events=max_events, max_time=np.inf, check=False)
    cpu = time.thread_time() - c
    return S, summary, cpu


def numba_overhead(scenario, policy):
    """CPU time of a call that simulates one event: allocation and call overhead."""
    best = math.inf
    for _ in range(3):
        best = min(best, _numba_run(scenario, policy, 1000, 0, max_events=1)[2])
    return best


def bench_numba(scenario, policy, operations, repeats, seed=0):
    overhead = numba_overhead(scenario, policy)
    best = None
    for _ in range(repeats):
        S, summary, cpu = _numba_run(scenario, policy, operations, seed)
        if best is None or cpu < best[2]:
            best = (S, summary, cpu)
    S, summary, cpu = best
    cpu = max(cpu - overhead, 1e-9)
    stats = S.stats[S.stats[:, mc_state.S_TIME] > 0]
    latency = stats[:, mc_state.S_LATENCY_SUM].sum() / max(stats[:, mc_state.S_FAULTS].sum(), 1)
    return dict(events=int(S.ints[mc_state.I_EVENTS]), faults=int(S.ints[mc_state.I_FAULTS_DONE]),
                cpu=cpu, wall=summary["wall_time"], overhead=overhead, latency=latency,
                completed=summary["completed"], overloaded=summary["overloaded"])


def bench_python(scenario, policy, operations, seed=0):
    eng = pp.Engine(scenario, policy, np.random.SeedSequence(seed), operations=operations,
                    batches=20, warmup=0.2)
    c = time.thread_time()
    w = time.perf_counter()
    eng.run()
    cpu = time.thread_time() - c
    wall = time.perf_counter() - w
    stats = np.array(eng.stats)
    stats = stats[stats[:, mc_state.S_TIME] > 0]
    latency = stats[:, mc_state.S_LATENCY_SUM].sum() / max(stats[:, mc_state.S_FAULTS].sum(), 1)
    return dict(events=eng.events, faults=eng.faults_done, cpu=cpu, wall=wall, latency=latency,
                completed=bool(eng.stop), overloaded=bool(eng.overload))


def _fmt_rate(x):
    return f"{x / 1e6:7.2f}M" if x >= 1e5 else f"{x / 1e3:7.1f}k"


def engines_table(cases, operations, repeats):
    rows = []
    head = (f"{'scenario':20s} {'policy':18s} {'ev/fault':>8s} | {'numba ev/s':>10s} "
            f"{'faults/s':>9s} {'(wall ev/s)':>11s} | {'python ev/s':>11s} {'faults/s':>9s} | "
            f"{'ratio ev':>8s} {'ratio f':>7s} | {'mean latency numba / python':>28s}")
    print(head)
    print("-" * len(head))
    for name, policy in cases:
        scenario = faultlock.Scenario.preset(name)
        nb = bench_numba(scenario, policy, operations, repeats)
        py = bench_python(scenario, policy, operations)
        nb_ev, nb_f = nb["events"] / nb["cpu"], nb["faults"] / nb["cpu"]
        py_ev, py_f = py["events"] / py["cpu"], py["faults"] / py["cpu"]
        ratio = nb["latency"] / max(py["latency"], 1e-30)
        regime = "" if 0.5 < ratio < 2 else "  <- regimes differ"
        print(f"{name:20s} {policy:18s} {nb['events'] / max(nb['faults'], 1):8.2f} | "
              f"{_fmt_rate(nb_ev):>10s} {_fmt_rate(nb_f):>9s} "
              f"{_fmt_rate(nb['events'] / nb['wall']):>11s} | {_fmt_rate(py_ev):>11s} "
              f"{_fmt_rate(py_f):>9s} | {nb_ev / py_ev:7.1f}x {nb_f / py_f:6.1f}x | "
              f"{nb['latency'] * 1e6:10.1f} µs / {py['latency'] * 1e6:8.1f} µs{regime}",
              flush=True)
        rows.append(dict(scenario=name, policy=policy, numba=nb, python=py,
                         numba_events_per_s=nb_ev, numba_faults_per_s=nb_f,
                         python_events_per_s=py_ev, python_faults_per_s=py_f,
                         ratio_events=nb_ev / py_ev, ratio_faults=nb_f / py_f))
    return rows


# ---- 4. profile ------------------------------------------------------------------------------
_EVENT_NAMES = {mc_state.EV_BURST: "burst end", mc_state.EV_WAKE: "wake-up latency over",
                mc_state.EV_RUN: "got a CPU", mc_state.EV_IO: "read complete",
                mc_state.EV_ARRIVAL: "writer arrival", mc_state.EV_SPIN: "spin timeout",
                getattr(mc_state, "EV_READER_ARRIVAL", -1): "background reader arrival"}
_CONT_NAMES = {v: k[2:].lower() for k, v in vars(mc_state).items()
               if k.startswith("K_") and isinstance(v, int)}


def event_mix(name, policy, operations):
    scenario = faultlock.Scenario.preset(name)
    eng = pp.Engine(scenario, policy, np.random.SeedSequence(0), operations=operations,
                    profile=True, rng_block=0)
    start = list(eng.rng.s)
    eng.run()
    faults = max(eng.faults_done, 1)
    print(f"\nevent mix per fault, {name} / {policy} (plain-Python twin, {eng.events} events, "
          f"{eng.faults_done} faults, {eng.events / faults:.2f} events per fault):")
    mix = sorted(eng.profile.items(), key=lambda kv: -kv[1])
    for (event, cont, rem), count in mix:
        what = _EVENT_NAMES.get(event, str(event))
        if event in (mc_state.EV_BURST, mc_state.EV_RUN):
            what += f" -> {_CONT_NAMES.get(cont, cont)}"
            if rem:
                what += " (burst continues: slice end / resume)"
        print(f"  {count / faults:7.3f}  {what}")
    inverse = pow(0x9E3779B97F4A7C15, -1, 1 << 64)
    draws = [((b - a) * inverse) & ((1 << 64) - 1) for a, b in zip(start, eng.rng.s)]
    T = eng.T
    purposes = {"think/idle times": sum(draws[3 * t] for t in range(T)),
                "page choices (Zipf)": sum(draws[3 * t + 1] for t in range(T)),
                "read latencies": sum(draws[3 * t + 2] for t in range(T)),
                "writer arrivals": draws[3 * T], "writer holds": draws[3 * T + 1],
                "writer kinds": draws[3 * T + 2], "reclaim clocks": draws[3 * T + 3],
                "background readers": sum(draws[3 * T + 4:])}
    total = sum(purposes.values())
    print(f"uniform draws per fault: {total / faults:.2f} "
          f"({total / max(eng.events, 1):.2f} per event)")
    for k, v in purposes.items():
        print(f"  {v / faults:7.3f}  {k}")
    return dict(events_per_fault=eng.events / faults,
                mix={f"{_EVENT_NAMES.get(e, e)}|{_CONT_NAMES.get(c, c)}|{r}": n / faults
                     for (e, c, r), n in mix},
                draws_per_fault={k: v / faults for k, v in purposes.items()})


def variants(operations, repeats):
    base = dict(faultlock.PRESETS["android_warm_start"])
    cases = [
        ("android_warm_start as is", {}),
        ("readaround_pages=1", dict(readaround_pages=1)),
        ("no reclaim", dict(reclaim_rate_cached=0.0, reclaim_rate_mapped=0.0)),
        ("no writers", dict(writer_rate=0.0)),
        ("cpus=0 (no run queue)", dict(cpus=0)),
        ("wakeup_latency=0", dict(wakeup_latency=0.0)),
        ("threads=16", dict(threads=16)),
        ("all of the above", dict(readaround_pages=1, reclaim_rate_cached=0.0,
                                  reclaim_rate_mapped=0.0, writer_rate=0.0, cpus=0,
                                  wakeup_latency=0.0, threads=16)),
    ]
    print(f"\nengine time per event as features are switched off (android_warm_start, mainline, "
          f"{operations} operations, best of {repeats}):")
    print(f"  {'variant':28s} {'ns/event':>9s} {'ns/fault':>9s} {'ev/fault':>9s} {'Mev/s':>7s}")
    rows = []
    for label, change in cases:
        scenario = faultlock.Scenario(**{**base, **change})
        nb = bench_numba(scenario, "mainline", operations, repeats)
        ns_event = nb["cpu"] / nb["events"] * 1e9
        ns_fault = nb["cpu"] / max(nb["faults"], 1) * 1e9
        print(f"  {label:28s} {ns_event:9.0f} {ns_fault:9.0f} "
              f"{nb['events'] / max(nb['faults'], 1):9.2f} {nb['events'] / nb['cpu'] / 1e6:7.2f}",
              flush=True)
        rows.append(dict(variant=label, ns_per_event=ns_event, ns_per_fault=ns_fault,
                         events_per_fault=nb["events"] / max(nb["faults"], 1)))
    return rows


_PERF_CHILD = textwrap.dedent(r"""
    import os, re, sys, time
    import numpy as np, faultlock
    from faultlock.model.montecarlo import simulate as sm, engine
    name, policy, operations, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    s = faultlock.Scenario.preset(name)
    kw = dict(batches=20, warmup=0.2, max_events=10**12, max_time=np.inf, check=False)
    sm.run_policy(s, policy, np.random.SeedSequence(0), operations=300, **kw)   # compiles
    lib = next(iter(engine.loop.overloads.values())).library
    syms = []
    for fn in lib._final_module.functions:
        if not fn.is_declaration:
            addr = lib.get_pointer_to_function(fn.name)
            if addr:
                syms.append((addr, fn.name))
    syms.sort()
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as f:
        for i, (addr, sym) in enumerate(syms):
            size = syms[i + 1][0] - addr if i + 1 < len(syms) else 0x10000
            f.write(f"{addr:x} {size:x} {sym}\n")
    sites, current = {}, None
    for line in lib.get_asm_str().splitlines():
        m = re.match(r"^(_ZN\S+):", line)
        if m:
            current = m.group(1)
            sites.setdefault(current, [0, 0])
        elif current and "$NRT_incref" in line:
            sites[current][0] += 1
        elif current and "$NRT_decref" in line:
            sites[current][1] += 1
    import json
    json.dump(sites, open(ready + ".sites", "w"))
    open(ready, "w").write(str(os.getpid()))
    time.sleep(1.0)
    t = time.process_time()
    S, summary = sm.run_policy(s, policy, np.random.SeedSequence(0), operations=operations, **kw)
    cpu = time.process_time() - t
    open(ready + ".done", "w").write(f"{summary['events']} {cpu}")
    time.sleep(0.5)
""")


def _short(symbol):
    """``faultlock.model.montecarlo.threads._add_readaround`` from a numba-mangled name."""
    import re
    m = re.search(r"montecarlo\d+(\w+?)\d+(\w+?)B\d+v", symbol)
    return f"{m.group(1)}.{m.group(2)}" if m else symbol


def perf_profile(name, policy, operations):
    """Function-level profile of the engine with ``perf``: compiles in a child with a private
    numba cache (so that the JIT's symbols are known), writes ``/tmp/perf-<pid>.map``, records
    the engine run only, and counts the refcount call sites in the generated code."""
    import shutil
    import signal
    if shutil.which("perf") is None:
        print("  perf not found: skipped")
        return None
    with tempfile.TemporaryDirectory(prefix="faultlock-perf-") as tmp:
        ready = os.path.join(tmp, "ready")
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "cache"))
        child = subprocess.Popen([sys.executable, "-c", _PERF_CHILD, name, policy,
                                  str(operations), ready], env=env)
        while not os.path.exists(ready):
            if child.poll() is not None:
                print("  the profiled process failed")
                return None
            time.sleep(0.5)
        pid = int(Path(ready).read_text())
        data = os.path.join(tmp, "perf.data")
        rec = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-p", str(pid), "-o", data],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(ready + ".done") and child.poll() is None:
            time.sleep(0.2)
        rec.send_signal(signal.SIGINT)
        rec.wait()
        child.wait()
        events, cpu = Path(ready + ".done").read_text().split()
        sites = json.loads(Path(ready + ".sites").read_text())
        report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                                 "--sort", "dso,sym"], capture_output=True, text=True,
                                check=False).stdout
        try:
            os.unlink(f"/tmp/perf-{pid}.map")
        except OSError:
            pass
    import re
    shares, site_counts = {}, {}
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(.+?)\s+\[\.\]\s+(\S+)", line)
        if not m or not ("JIT" in m.group(2) or "libm" in m.group(2)):
            continue
        sym = m.group(3)
        key = ("libm " + sym) if "libm" in m.group(2) else _short(sym)
        shares[key] = shares.get(key, 0.0) + float(m.group(1))
        if sym in sites:
            site_counts[key] = sites[sym]
    total = sum(shares.values())
    print(f"  perf, {name} / {policy}: {int(events)} events in {float(cpu):.2f} s cpu "
          f"({int(events) / float(cpu) / 1e6:.2f} M events/s); share of engine time "
          f"(JIT code and libm), refcount call sites (incref/decref) in the function:")
    rows = sorted(shares.items(), key=lambda kv: -kv[1])
    for key, share in rows[:22]:
        inc, dec = site_counts.get(key, ("", ""))
        print(f"  {100 * share / total:6.1f}%  {key:40s} {inc!s:>4s} {dec!s:>4s}")
    return dict(events=int(events), cpu=float(cpu),
                shares={k: v / total for k, v in rows}, refcount_sites=site_counts)


# ---- main --------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs, no cold compile, no profile")
    ap.add_argument("--operations", type=int, help="operations per run (default 50000, quick "
                                                   "10000)")
    ap.add_argument("--repeats", type=int, help="engine repeats, best kept (default 3, quick 2)")
    ap.add_argument("--presets", nargs="*", help="presets to run (default: all)")
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time section")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                    help="the profile section (default: on unless --quick)")
    ap.add_argument("--perf", action="store_true", help="function-level perf profile of the "
                                                        "engine (needs perf; compiles once more)")
    ap.add_argument("--json", type=Path, help="also write every number to this file")
    args = ap.parse_args(argv)
    operations = args.operations or (10_000 if args.quick else 50_000)
    repeats = args.repeats or (2 if args.quick else 3)
    profile = (not args.quick) if args.profile is None else args.profile
    presets = args.presets or list(faultlock.Scenario.presets())
    results = dict(operations=operations, repeats=repeats, python=sys.version.split()[0],
                   numba=__import__("numba").__version__, cpu=_cpu_name())
    print(f"faultlock engine benchmark: {results['cpu']}, Python {results['python']}, numba "
          f"{results['numba']}; {operations} operations a run; rates per core (thread CPU time)")

    if not args.no_compile:
        where = ("a private NUMBA_CACHE_DIR, empty then warm" if not args.quick
                 else "the project's cache, warm")
        print(f"\n1. numba compile (android_warm_start, mainline, 200 operations; a separate "
              f"process, {where})")
        ct = compile_times(cold=not args.quick)
        for label, r in ct.items():
            print(f"  {label:24s} import {r['import_cpu']:6.2f} s cpu, first call "
                  f"{r['first_cpu']:6.2f} s cpu ({r['first_wall']:6.2f} s wall), second call "
                  f"{r['second_cpu'] * 1e3:6.1f} ms cpu")
        results["compile"] = ct

    print("\n2. reference event loops (M/M/1, rho = 0.8, binary-heap calendar)")
    ref = reference(2_000_000 if args.quick else 10_000_000, 200_000 if args.quick else 1_000_000)
    print(f"  numba @njit heap loop    {ref['numba_events_per_s'] / 1e6:6.2f} M events/s "
          f"(Wq {ref['numba_wq']:.3f}, theory {ref['theory_wq']:.3f})")
    print(f"  plain Python heapq loop  {ref['python_events_per_s'] / 1e6:6.2f} M events/s "
          f"(Wq {ref['python_wq']:.3f}); "
          f"ratio {ref['numba_events_per_s'] / ref['python_events_per_s']:.0f}x")
    results["reference"] = ref

    print(f"\n3. engine against the plain-Python twin (same scenario, policy, seed and run length;"
          f" engine best of {repeats})")
    cases = [(name, "mainline") for name in presets]
    if "android_warm_start" in presets:
        cases += [("android_warm_start", p) for p in faultlock.POLICIES if p != "mainline"]
    rows = engines_table(cases, operations, repeats)
    results["engines"] = rows
    main_row = next((r for r in rows if r["scenario"] == "android_warm_start"
                     and r["policy"] == "mainline"), None)
    if main_row:
        ev, f, ratio = (main_row["numba_events_per_s"], main_row["numba_faults_per_s"],
                        main_row["ratio_events"])
        print(f"\n  targets on android_warm_start / mainline: {ev / 1e6:.2f}M events/s of "
              f"{TARGET_EVENTS / 1e6:.0f}M ({ev / TARGET_EVENTS:.0%}), {f / 1e6:.3f}M faults/s "
              f"of {TARGET_FAULTS / 1e6:.0f}M ({f / TARGET_FAULTS:.0%}), {ratio:.1f}x the plain "
              f"Python loop of {TARGET_RATIO:.0f}x; the engine runs at "
              f"{ev / ref['numba_events_per_s']:.0%} of the minimal compiled loop's event rate")

    if profile:
        print("\n4. profile")
        results["event_mix"] = event_mix("android_warm_start", "mainline", min(operations, 20_000))
        results["variants"] = variants(operations, repeats)
    if args.perf:
        print("\n5. perf profile of the compiled engine")
        results["perf"] = perf_profile("android_warm_start", "mainline", 400_000 if not args.quick
                                       else 100_000)

    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
        print(f"\nwrote {args.json}")


def _cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" x{os.cpu_count()}"
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
