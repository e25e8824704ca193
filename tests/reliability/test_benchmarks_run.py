"""`make bench` stays true: every benchmark runs to its end at a tiny size and its last line
carries the figures issue 16 names, so that runs can be compared from one to the next.

Only that they run and what they print is checked here; how fast is the benchmarks' own
business (speed goals stay out of the tests).
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from bench.run import BENCHMARKS
from tests.reliability.conftest import ROOT

# Each benchmark at a size that runs in seconds, and the keys its last line must hold.
TINY = {
    "bench.registry_search": (["--sizes", "50,200", "--queries", "20"],
                              ["static_ratio", "search_ratio", "growth_p95",
                               "pg_static_ratio", "pg_search_ratio", "pg_growth_p95"]),
    "bench.newsletter_send": (["--sizes", "30,60", "--baseline", "400"],
                              ["ratio", "ratio_4conn", "cpu_ms_per_msg", "rss_ratio"]),
    "bench.concerns_load": (["--concerns", "300", "--supporters", "100", "--seconds", "2",
                             "--connections", "4"], ["errors", "dashboard_p99_ratio"]),
    "bench.page_speed": ([], ["max_kb", "max_requests", "max_lcp_ms"]),
    "bench.import_csv": (["--sizes", "100,300"],
                         ["ratio", "rss_ratio", "pg_ratio", "pg_rss_ratio"]),
}


def test_every_benchmark_is_covered_here():
    assert set(TINY) == set(BENCHMARKS)


@pytest.mark.parametrize("module", BENCHMARKS)
def test_the_benchmark_runs_and_ends_with_its_figures(module, tmp_path):
    args, keys = TINY[module]
    env = dict(os.environ, HOTNET_ENV="development", HOTNET_INSTANCE_PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    figures = dict(re.findall(r"(\w+)=(\S+)", last))
    for key in keys:
        assert key in figures, f"{module}: no {key}= in its last line: {last}"
        assert math.isfinite(float(figures[key])), f"{module}: {key}={figures[key]}"
