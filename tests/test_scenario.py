"""Tests of the parameter contract: validation, units, grids, serialisation, presets."""

import dataclasses
import doctest
import itertools
import json
import pickle
import re
import tomllib

import numpy as np
import pytest
import xarray as xr

import faultlock
from faultlock.model import scenario as scenario_module
from faultlock.model.scenario import PRESETS, Field, Scenario, parse_time

FIELD_ORDER = [
    "threads", "think_time", "idle_time", "vmas", "pages_per_vma", "page_popularity",
    "access_pattern", "group_size", "walk_pages", "walk_order", "swap_share",
    "io_latency", "io_latency_cv", "io_distribution", "io_parallelism", "io_depth_slope",
    "io_stall_share", "io_stall_latency", "io_stall_cv",     # issue 14: the device's tail
    "io_page_time", "readaround_pages", "zram_latency", "fault_cpu_time", "cpus", "sched_slice",
    "wakeup_preemption", "tick_hz", "wakeup_latency", "reclaim", "memory_limit", "lru_lists",
    "reclaim_cpu_time", "reclaim_rate_cached", "reclaim_rate_mapped", "writer_mode", "writer_rate",
    "writer_threads", "writer_op_rate", "writer_locks_per_op", "writer_gap_cpu", "writer_where",
    "writer_hold", "writer_hold_cv", "writer_hold_distribution", "writer_vma_share",
    "writer_fork_share",
    "reader_rate", "reader_hold", "rwsem",
    "writer_spin", "handoff_timeout", "reader_wake_batch", "tried_after_major", "retry_limit",
    "jank_threshold",
    # issue 12: file rounds, holes, fault-around, noise
    "round_lock_hold", "unmap_page_time", "faultaround_pages", "read_source", "hole_page_cpu",
    "noise_threads", "noise_cpu", "noise_sleep",
]


def grid_scenario() -> Scenario:
    """A scenario with numeric, string-valued, coordinate-labelled and 2-D DataArray fields."""
    return Scenario(
        threads=xr.DataArray([1, 2, 4], dims="threads"),
        io_latency=xr.DataArray([50e-6, 150e-6], dims="io", coords={"io": ["nvme", "ufs"]}),
        writer_rate=xr.DataArray([[0.0, 100.0], [300.0, 1000.0]], dims=("load", "io")),
        rwsem=xr.DataArray(["linux", "fifo"], dims="rwsem"),
        writer_spin=xr.DataArray([True, False], dims="rwsem"),
    )


# -- the field table ------------------------------------------------------------------------------

def test_fields_in_order_with_defaults():
    assert list(Scenario.FIELDS) == FIELD_ORDER
    assert [f.name for f in dataclasses.fields(Scenario)] == FIELD_ORDER
    default = Scenario()
    for name, spec in Scenario.FIELDS.items():
        assert isinstance(spec, Field)
        assert spec.name == name and spec.meaning and spec.unit
        assert getattr(default, name) == spec.default
    assert default.threads == 16 and default.io_latency == 100e-6
    assert default.rwsem == "linux" and default.writer_spin is True
    assert Scenario.FIELDS["writer_rate"].unit == "1/s"
    assert Scenario.FIELDS["io_latency"].kind == "time"
    assert Scenario.FIELDS["rwsem"].choices == (
        "linux", "fifo", "reader_pref", "writer_pref", "phase_fair")


@pytest.mark.parametrize("markdown", [False, True])
def test_describe_lists_every_field(markdown):
    text = Scenario.describe(markdown=markdown)
    for name, spec in Scenario.FIELDS.items():
        assert name in text
        assert spec.allowed.split()[0] in text
    assert "200 µs" in text and "16.7 ms" in text and "share in [0, 1]" in text
    if markdown:
        lines = text.strip().splitlines()
        assert lines[0] == "| field | unit | default | allowed | meaning |"
        assert len(lines) == 2 + len(Scenario.FIELDS)


def test_immutable():
    scenario = Scenario()
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.threads = 3
    grid = grid_scenario()
    with pytest.raises(ValueError):
        grid.threads.values[0] = 99  # arrays are read-only too


# -- units ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("150us", 150e-6), ("150 µs", 150e-6), ("150 μs", 150e-6), ("2ms", 2e-3), ("1.5s", 1.5),
    ("20ns", 20e-9), ("1e-3", 1e-3), (" 0.5 ms ", 0.5e-3), ("16.7ms", 16.7e-3), (3, 3.0),
    (2.5e-6, 2.5e-6),
])
def test_parse_time(text, seconds):
    assert parse_time(text, "think_time") == seconds  # exact: parsed in decimal
    assert Scenario(think_time=text).think_time == seconds


@pytest.mark.parametrize("text, per_second", [
    ("300/s", 300.0), ("300 /s", 300.0), ("2/ms", 2000.0), ("1 kHz", 1000.0), ("60/min", 1.0),
    ("15000", 15000.0), (42, 42.0),
])
def test_parse_rate(text, per_second):
    assert parse_time(text, "writer_rate") == per_second
    assert Scenario(writer_rate=text).writer_rate == per_second


@pytest.mark.parametrize("field, text", [
    ("think_time", "150 parsecs"), ("think_time", "fast"), ("think_time", "300/s"),
    ("writer_rate", "2ms"), ("io_latency", "1..2ms"),
])
def test_parse_bad_unit_names_the_field(field, text):
    with pytest.raises(ValueError, match=field):
        parse_time(text, field)
    with pytest.raises(ValueError, match=rf"^{field}='{text}' is not allowed"):
        Scenario(**{field: text})


def test_parse_time_outside_scenario():
    assert parse_time("2ms", "timeout") == 2e-3
    assert parse_time("5/s", "my_rate", kind="rate") == 5.0
    with pytest.raises(ValueError, match="timeout"):
        parse_time("2 weeks", "timeout")
    with pytest.raises(ValueError, match="threads"):
        parse_time("2ms", "threads", kind="count")


# -- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, expected", [
    ({"swap_share": 1.5}, "swap_share=1.5 is not allowed: share in [0, 1]"),
    ({"writer_vma_share": -0.1}, "writer_vma_share=-0.1 is not allowed: share in [0, 1]"),
    ({"threads": 2.5}, "threads=2.5 is not allowed: integer count"),
    ({"threads": True}, "threads=True is not allowed: integer count"),
    ({"cpus": "4"}, "cpus='4' is not allowed: integer count"),
    ({"threads": 0}, "threads=0 is not allowed: integer count in [1, 1_000_000]"),
    ({"threads": 2_000_000}, "threads=2000000 is not allowed"),
    ({"pages_per_vma": 2**41},
     f"pages_per_vma={2**41} is not allowed: integer count in [1, 2**40]"),
    ({"reader_wake_batch": 0}, "reader_wake_batch=0 is not allowed: integer count >= 1"),
    ({"think_time": -1e-6}, "think_time=-1e-06 is not allowed: time (s) >= 0"),
    ({"think_time": "-2ms"}, "think_time='-2ms' is not allowed: time (s) >= 0"),
    ({"io_latency": 0}, "io_latency=0 is not allowed: time (s) in (0, 100]"),
    ({"io_latency": 101}, "io_latency=101 is not allowed"),
    ({"io_latency": float("nan")}, "io_latency=nan is not allowed"),
    ({"think_time": float("inf")}, "think_time=inf is not allowed"),
    ({"sched_slice": 0.0}, "sched_slice=0.0 is not allowed: time (s) > 0"),
    ({"writer_rate": -5}, "writer_rate=-5 is not allowed: rate (1/s) >= 0"),
    ({"page_popularity": 11}, "page_popularity=11 is not allowed: number in [0, 10]"),
    ({"io_latency_cv": "1"}, "io_latency_cv='1' is not allowed: number"),
    ({"io_distribution": "weibull"}, "io_distribution='weibull' is not allowed: one of"),
    ({"rwsem": "fair"}, "rwsem='fair' is not allowed: one of 'linux', 'fifo'"),
    ({"writer_spin": 1}, "writer_spin=1 is not allowed: True or False"),
    ({"tried_after_major": "yes"}, "tried_after_major='yes' is not allowed: True or False"),
    ({"threads": [1, 2]}, "threads=[1, 2] is not allowed"),
    ({"threads": np.array([1, 2])}, "threads=array([1, 2]) is not allowed"),
    ({"writer_vma_share": 0.7, "writer_fork_share": 0.5},
     "writer_vma_share + writer_fork_share = 0.7 + 0.5 is not allowed"),
])
def test_bad_input_names_field_value_and_rule(changes, expected):
    with pytest.raises(ValueError) as error:
        Scenario(**changes)
    assert str(error.value).startswith(expected)


def test_unknown_field_suggests_close_matches():
    with pytest.raises(ValueError, match=r"^thread=4 is not allowed: .*did you mean 'threads'"):
        Scenario(thread=4)
    with pytest.raises(ValueError, match=r"xyzzy=1 is not allowed: .*the fields are threads, "):
        Scenario(xyzzy=1)


def test_several_problems_in_one_error():
    with pytest.raises(ValueError, match=r"^2 problems: threads=2\.5 .*; swap_share=-1 "):
        Scenario(threads=2.5, swap_share=-1)


def test_shares_may_sum_to_one():
    assert Scenario(writer_vma_share=0.7, writer_fork_share=0.3).writer_fork_share == 0.3


def test_normalisation():
    assert type(Scenario(threads=np.int64(4)).threads) is int
    assert Scenario(threads=4.0).threads == 4 and type(Scenario(threads=1e6).threads) is int
    assert type(Scenario(writer_rate=5).writer_rate) is float
    assert Scenario(writer_spin=np.bool_(False)).writer_spin is False
    assert Scenario(think_time=-0.0) == Scenario(think_time=0.0)
    # linux-only options are kept, not rejected, under other disciplines
    assert Scenario(rwsem="fifo").writer_spin is True


def test_replace_validates_and_keeps_the_rest():
    base = Scenario.preset("android_warm_start")
    changed = base.replace(threads=64, io_latency="1ms")
    assert changed.threads == 64 and changed.io_latency == 1e-3
    assert changed.writer_rate == base.writer_rate and base.threads == 300
    with pytest.raises(ValueError, match="swap_share=2"):
        base.replace(swap_share=2)
    with pytest.raises(ValueError, match="threds"):
        base.replace(threds=3)
    with pytest.raises(ValueError, match="writer_fork_share"):
        base.replace(writer_fork_share=0.9)  # with writer_vma_share 0.3
    assert dataclasses.replace(base, threads=2).threads == 2


# -- DataArray fields -----------------------------------------------------------------------------

def test_dataarray_fields_and_dims():
    grid = grid_scenario()
    assert not grid.is_scalar and Scenario().is_scalar
    assert grid.dims == {"threads": 3, "io": 2, "load": 2, "rwsem": 2}
    assert grid.array_fields == ("threads", "io_latency", "writer_rate", "rwsem", "writer_spin")
    # every dimension is labelled: by its coordinate, else by the values of the field it is named
    # after (threads, rwsem), else by position (load: writer_rate varies along io as well)
    assert list(grid.coords) == ["threads", "io", "load", "rwsem"]
    assert grid.coords["threads"].tolist() == [1, 2, 4]
    assert grid.coords["io"].tolist() == ["nvme", "ufs"]
    assert grid.coords["load"].tolist() == [0, 1]
    assert grid.coords["rwsem"].tolist() == ["linux", "fifo"]
    assert grid.threads.dtype == np.int64 and grid.rwsem.dtype == object
    assert Scenario(threads=xr.DataArray(7)).threads == 7  # 0-d arrays become scalars


def test_dataarray_validated_elementwise():
    with pytest.raises(ValueError, match=r"^threads=0 is not allowed: .*\{'n': 20\}"):
        Scenario(threads=xr.DataArray([1, 0, 4], dims="n", coords={"n": [10, 20, 30]}))
    with pytest.raises(ValueError, match=r"^threads=2\.5 is not allowed"):
        Scenario(threads=xr.DataArray([1.0, 2.5], dims="n"))
    with pytest.raises(ValueError, match=r"^threads=True is not allowed"):
        Scenario(threads=xr.DataArray([True, False], dims="n"))
    with pytest.raises(ValueError, match=r"^io_latency='2 parsec' is not allowed"):
        Scenario(io_latency=xr.DataArray(["1ms", "2 parsec"], dims="x"))
    with pytest.raises(ValueError, match=r"^rwsem='bogus' is not allowed.*\{'r': 1\}"):
        Scenario(rwsem=xr.DataArray(["linux", "bogus"], dims="r"))
    with pytest.raises(ValueError, match=r"writer_vma_share \+ writer_fork_share = 0\.9 \+ 0\.3"):
        Scenario(writer_vma_share=xr.DataArray([0.5, 0.9], dims="v"), writer_fork_share=0.3)
    with pytest.raises(ValueError, match="empty"):
        Scenario(threads=xr.DataArray(np.zeros(0, int), dims="n"))
    strings = Scenario(io_latency=xr.DataArray(["150us", "2ms"], dims="x"))
    assert strings.io_latency.values.tolist() == [150e-6, 2e-3]


def test_inconsistent_dims_rejected():
    with pytest.raises(ValueError, match="dimension 'x' has size 2 in threads"):
        Scenario(threads=xr.DataArray([1, 2], dims="x"), cpus=xr.DataArray([1, 2, 3], dims="x"))
    with pytest.raises(ValueError, match="same coordinates"):
        Scenario(threads=xr.DataArray([1, 2], dims="x", coords={"x": [1, 2]}),
                 cpus=xr.DataArray([1, 2], dims="x", coords={"x": [1, 3]}))
    shared = Scenario(threads=xr.DataArray([1, 2], dims="x"), cpus=xr.DataArray([4, 8], dims="x"))
    assert shared.dims == {"x": 2} and len(list(shared.cells())) == 2


def test_cells_of_2d_grid_is_the_product():
    threads = [1, 2, 4]
    latencies = [50e-6, 1e-3]
    grid = Scenario.preset("virtio_2cpu").replace(
        threads=xr.DataArray(threads, dims="threads", coords={"threads": threads}),
        io_latency=xr.DataArray(latencies, dims="io_latency"))
    cells = list(grid.cells())
    assert len(cells) == 6
    expected = list(itertools.product(enumerate(threads), enumerate(latencies)))
    for (coords, cell), ((_, t), (j, latency)) in zip(cells, expected):
        assert coords == {"threads": t, "io_latency": latency}  # coordinate, else the values
        assert j == latencies.index(latency)
        assert type(coords["threads"]) is int
        assert cell.is_scalar and cell.threads == t and cell.io_latency == latency
        assert type(cell.threads) is int and type(cell.io_latency) is float
        assert cell == Scenario.preset("virtio_2cpu", threads=t, io_latency=latency)
    assert list(Scenario().cells()) == [({}, Scenario())]


def test_cells_of_multidimensional_field():
    grid = grid_scenario()
    cells = list(grid.cells())
    assert len(cells) == 3 * 2 * 2 * 2
    coords, cell = cells[-1]
    assert coords == {"threads": 4, "io": "ufs", "load": 1, "rwsem": "fifo"}
    assert (cell.threads, cell.io_latency, cell.writer_rate) == (4, 150e-6, 1000.0)
    assert (cell.rwsem, cell.writer_spin) == ("fifo", False)


def test_as_arrays_broadcasts_every_field():
    grid = grid_scenario()
    arrays, dims = grid.as_arrays()
    assert dims == ("threads", "io", "load", "rwsem")
    assert set(arrays) == set(FIELD_ORDER)
    for values in arrays.values():
        assert values.shape == (3, 2, 2, 2)
    assert arrays["threads"].dtype == np.int64 and arrays["cpus"].dtype == np.int64
    assert arrays["think_time"].dtype == np.float64
    assert arrays["rwsem"].dtype == object and arrays["writer_spin"].dtype == bool
    assert arrays["writer_rate"][0, 1, 1, 0] == 1000.0
    assert arrays["rwsem"][2, 1, 1, 1] == "fifo"
    assert (arrays["cpus"] == 8).all()
    scalar_arrays, scalar_dims = Scenario().as_arrays()
    assert scalar_dims == () and scalar_arrays["threads"].shape == ()


# -- serialisation, equality, provenance ----------------------------------------------------------

ROUND_TRIP_CASES = [*PRESETS, "grid"]


def build(case: str) -> Scenario:
    return grid_scenario() if case == "grid" else Scenario.preset(case)


@pytest.mark.parametrize("case", ROUND_TRIP_CASES)
def test_round_trips(case):
    scenario = build(case)
    as_dict = scenario.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict  # plain JSON-able
    for copy in (Scenario.from_dict(as_dict), Scenario.from_json(scenario.to_json()),
                 Scenario.from_toml(scenario.to_toml()), pickle.loads(pickle.dumps(scenario))):
        assert copy == scenario
        assert copy.to_dict() == as_dict
        assert copy.key() == scenario.key()
        assert hash(copy) == hash(scenario)
    assert tomllib.loads(scenario.to_toml()) == as_dict


def test_dataarray_in_dict():
    as_dict = grid_scenario().to_dict()
    assert as_dict["threads"] == {"dims": ["threads"], "data": [1, 2, 4],
                                  "coords": {"threads": [1, 2, 4]}}  # labelled by its values
    assert as_dict["io_latency"] == {"dims": ["io"], "data": [50e-6, 150e-6],
                                     "coords": {"io": ["nvme", "ufs"]}}
    assert as_dict["writer_rate"]["data"] == [[0.0, 100.0], [300.0, 1000.0]]
    assert as_dict["cpus"] == 8
    with pytest.raises(ValueError, match="threads="):
        Scenario.from_dict({"threads": {"dims": ["n"]}})


def test_partial_hand_written_toml():
    text = 'threads = 64\nio_latency = "150us"\nwriter_rate = "300/s"\n' \
           'cpus = { dims = ["cpus"], data = [2, 8] }\n'
    scenario = Scenario.from_toml(text)
    assert scenario.io_latency == 150e-6 and scenario.writer_rate == 300.0
    assert scenario.dims == {"cpus": 2} and scenario.vmas == Scenario().vmas


def test_equality_hash_and_key():
    a, b = Scenario(threads=4), Scenario(threads=4.0)
    assert a == b and hash(a) == hash(b) and a.key() == b.key()
    assert len({a, b, Scenario()}) == 2
    assert a != Scenario(threads=5) and a.key() != Scenario(threads=5).key()
    assert Scenario(io_latency="150us") == Scenario(io_latency=150e-6)
    assert len(a.key()) == 64 and int(a.key(), 16) >= 0
    assert Scenario().key() == Scenario().key()
    assert a != "not a scenario"
    assert "threads=4" in repr(a) and "cpus" not in repr(a)


# -- presets --------------------------------------------------------------------------------------

def test_presets():
    described = Scenario.presets()
    assert set(described) == set(PRESETS) == {
        "android_warm_start", "memcg_reproducer", "fork_heavy", "lespinasse_2010", "server_nvme",
        "virtio_2cpu"}
    assert all(isinstance(text, str) and text for text in described.values())
    for name, values in PRESETS.items():
        scenario = Scenario.preset(name)
        assert scenario.is_scalar
        for field, value in values.items():
            assert getattr(scenario, field) == value


def test_presets_are_their_documented_fields():
    """Each preset is exactly its module-level dict over the defaults; fork_heavy derives from
    android_warm_start as documented."""
    for name, fields in PRESETS.items():
        preset = Scenario.preset(name)
        assert preset == Scenario(**fields)
        for key, value in fields.items():
            # as the field reads the value (units, names), whatever the fields it needs beside it
            assert getattr(preset, key) == Scenario.FIELDS[key].coerce(value), (name, key)
    fork, android = Scenario.preset("fork_heavy"), Scenario.preset("android_warm_start")
    assert fork.writer_fork_share > android.writer_fork_share
    assert fork.threads == android.threads


def test_preset_overrides_and_unknown_preset():
    assert Scenario.preset("server_nvme", threads=16).threads == 16
    with pytest.raises(ValueError, match="swap_share=3"):
        Scenario.preset("server_nvme", swap_share=3)
    with pytest.raises(ValueError, match=r"preset='android' is not allowed: one of "
                                         r"'android_warm_start', 'memcg_reproducer'"):
        Scenario.preset("android")


def test_presets_are_read_only():
    with pytest.raises(TypeError):
        PRESETS["virtio_2cpu"]["threads"] = 3


def test_docstring_examples():
    result = doctest.testmod(scenario_module, extraglobs={"xr": xr})
    assert result.attempted > 0 and result.failed == 0


# -- group walks and writer threads (SCENARIO_SPEC.md §1-2) ----------------------------------------

@pytest.mark.parametrize("changes, message", [
    (dict(access_pattern="group_walk", threads=8, group_size=3),
     "group_size=3 with threads=8 is not allowed: a group size that divides threads"),
    (dict(access_pattern="group_walk", threads=4, group_size=8), "group_size=8 with threads=4"),
    (dict(access_pattern="group_walk", page_popularity=1.0),
     "page_popularity=1.0 is not allowed with access_pattern='group_walk'"),
    (dict(access_pattern="group_walk", vmas=1, pages_per_vma=1000, threads=4, walk_pages=300),
     "walk_pages=300 is not allowed: one epoch of the walk"),
    (dict(group_size=2), "group_size=2 is not allowed with access_pattern='popularity'"),
    (dict(walk_pages=64), "walk_pages=64 is not allowed with access_pattern='popularity'"),
    (dict(walk_order="sequential"), "walk_order='sequential' is not allowed with access_pattern"),
    (dict(writer_mode="periodic", writer_threads=1, writer_op_rate=10.0),
     "writer_rate=100.0 is not allowed with writer_mode='periodic': 0"),
    (dict(writer_threads=2), "writer_threads=2 is not allowed with writer_mode='poisson'"),
    (dict(writer_where="process"), "writer_where='process' is not allowed with writer_mode="),
    (dict(writer_locks_per_op=2), "writer_locks_per_op=2 is not allowed with writer_mode="),
    (dict(writer_gap_cpu=1e-6), "writer_gap_cpu=1e-06 is not allowed with writer_mode="),
    (dict(writer_mode="periodic", writer_rate=0.0, writer_threads=1),
     "writer_op_rate=0.0 is not allowed with writer_mode='periodic'"),
    (dict(writer_mode="flat_out", writer_rate=0.0, writer_threads=1, writer_op_rate=5.0),
     "writer_op_rate=5.0 is not allowed with writer_mode='flat_out'"),
    (dict(writer_mode="flat_out", writer_rate=0.0, writer_threads=1, writer_hold=0.0),
     "writer_gap_cpu + writer_hold = 0.0 + 0.0 is not allowed"),
    (dict(writer_mode="bursty"), "writer_mode='bursty' is not allowed: one of"),
])
def test_walk_and_writer_thread_constraints(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Scenario(**changes)


def test_walk_and_writer_threads_accepted_and_on_grids():
    s = Scenario(access_pattern="group_walk", threads=8, group_size=0, walk_pages=64,
                 walk_order="sequential", writer_mode="flat_out", writer_rate=0.0,
                 writer_threads=2, writer_locks_per_op=2, writer_gap_cpu="3us",
                 writer_where="process")
    assert s.group_size == 0 and s.writer_gap_cpu == 3e-6
    assert Scenario.from_json(s.to_json()) == s
    grid = s.replace(group_size=xr.DataArray([1, 2, 4, 8], dims="g"))
    assert grid.dims == {"g": 4}
    with pytest.raises(ValueError, match=re.escape("group_size=3 with threads=8 (at {'g': 2})")):
        s.replace(group_size=xr.DataArray([1, 2, 3, 8], dims="g"))


# -- memory: the limit or the hazards (issue 12) -------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    (dict(reclaim_rate_cached=20.0),
     "reclaim_rate_cached=20.0 is not allowed with reclaim='lru': only reclaim='hazard' uses it"),
    (dict(reclaim_rate_mapped=2.0), "reclaim_rate_mapped=2.0 is not allowed with reclaim='lru'"),
    (dict(reclaim="hazard", memory_limit=4096),
     "memory_limit=4096 is not allowed with reclaim='hazard': only reclaim='lru' uses it; leave "
     "it at its default 0"),
    (dict(reclaim="hazard", lru_lists=1), "lru_lists=1 is not allowed with reclaim='hazard'"),
    (dict(reclaim="hazard", reclaim_cpu_time=5e-6),
     "reclaim_cpu_time=5e-06 is not allowed with reclaim='hazard'"),
    (dict(reclaim="lru_gen"), "reclaim='lru_gen' is not allowed: one of 'lru', 'hazard'"),
    (dict(lru_lists=3), "lru_lists=3 is not allowed"),
    (dict(memory_limit=-1), "memory_limit=-1 is not allowed"),
    (dict(memory_limit=16, readaround_pages=32),
     "memory_limit=16 is not allowed: 0 (unlimited) or at least one read-around, "
     "min(readaround_pages, pages_per_vma) = 32 pages"),
])
def test_memory_fields_constraints(changes, message):
    with pytest.raises(faultlock.ArgumentError, match=re.escape(message)):
        Scenario(**changes)


def test_memory_fields_accepted_and_on_grids():
    s = Scenario(memory_limit=4096, lru_lists=1, reclaim_cpu_time="2us")
    assert (s.reclaim, s.memory_limit, s.lru_lists, s.reclaim_cpu_time) == ("lru", 4096, 1, 2e-6)
    assert Scenario.from_json(s.to_json()) == s
    hazard = Scenario(reclaim="hazard", reclaim_rate_cached="200/s")
    assert hazard.reclaim_rate_cached == 200.0
    grid = s.replace(memory_limit=xr.DataArray([0, 64, 4096], dims="m"))
    assert grid.dims == {"m": 3}
    with pytest.raises(faultlock.ArgumentError, match=re.escape("memory_limit=8 (at {'m': 0})")):
        s.replace(memory_limit=xr.DataArray([8, 64], dims="m"))
    # the Douyin calibration (kernel.md §1.4) was made with hazards; the others have a limit
    for name in ("android_warm_start", "fork_heavy"):
        assert Scenario.preset(name).reclaim == "hazard"
    for name in ("memcg_reproducer", "server_nvme"):
        assert Scenario.preset(name).reclaim == "lru" and Scenario.preset(name).memory_limit > 0
