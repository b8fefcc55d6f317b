"""gunicorn's worker count follows the CPUs the service may use: a container's cgroup quota, not the host's cores.

config/gunicorn.conf.py reads cgroup v2's cpu.max or v1's cfs quota; here each case is a fake cgroup folder.
"""
from __future__ import annotations

import math
import os

from tests.support.gunicorn_server import conf_workers

CPUS = len(os.sched_getaffinity(0))
WITH_REDIS = {"OTP_REDIS_URL": "redis://127.0.0.1:1/0"}


def cgroup(tmp_path, name: str, files: dict[str, str]):
    """A folder laid out as /sys/fs/cgroup with these files."""
    root = tmp_path / name
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text + "\n")
    root.mkdir(exist_ok=True)
    return root


def test_the_worker_count_follows_the_cgroup_quota(tmp_path):
    cases = {  # name: (files, the CPUs the quota allows, None: no limit)
        "v2-one-and-a-half": ({"cpu.max": "150000 100000"}, 1.5),
        "v2-half": ({"cpu.max": "50000 100000"}, 0.5),
        "v2-eight": ({"cpu.max": "800000 100000"}, 8),
        "v2-unlimited": ({"cpu.max": "max 100000"}, None),
        "v2-garbage": ({"cpu.max": "lots"}, None),
        "v1-one": ({"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"}, 1),
        "v1-combined-folder": ({"cpu,cpuacct/cpu.cfs_quota_us": "250000",
                                "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 2.5),
        "v1-unlimited": ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        "no-cgroup-files": ({}, None),
    }
    roots = [cgroup(tmp_path, name, files) for name, (files, _) in cases.items()]
    expected = [2 * (CPUS if quota is None else max(1, min(CPUS, math.ceil(quota)))) + 1
                for _, quota in cases.values()]
    assert conf_workers(WITH_REDIS, *roots) == expected
    # The quota decides, not the machine: one CPU's quota gives 3 workers on any host.
    assert conf_workers(WITH_REDIS, roots[list(cases).index("v1-one")]) == [3]


def test_an_explicit_count_wins_and_the_embedded_store_gets_one_worker(tmp_path):
    root = cgroup(tmp_path, "eight", {"cpu.max": "800000 100000"})
    assert conf_workers({**WITH_REDIS, "OTP_WORKERS": "7"}, root) == [7]
    assert conf_workers({}, root) == [1]  # no OTP_REDIS_URL: one process holds the embedded store
