"""How ``podnetsim check`` grows with the cluster: ``python -m sim.bench_check``.

A scenario of N nodes with P pods each (default 30) is written to a temporary
directory and ``check`` runs on it in this process (the CLI's own code, printing
to a buffer), timed by wall clock. Nothing here is a test: speed goes in
reports, never in assertions (the machine is shared).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

NODE_COUNTS = (10, 100, 300, 1000)


def cluster_toml(n_nodes: int, pods_per_node: int) -> str:
    """Write a scenario of ``n_nodes`` nodes with ``pods_per_node`` pods each (no flows)."""
    lines = [
        'name = "check-growth"',
        "[node_network]",
        'cidr = "10.128.0.0/16"',
        'gateway = "10.128.0.1"',
    ]
    for i in range(n_nodes):
        lines += ["[[nodes]]", f'name = "n{i}"']
    for i in range(n_nodes):
        for k in range(pods_per_node):
            lines += ["[[pods]]", f'name = "p{i}-{k}"', f'node = "n{i}"']
    return "\n".join(lines) + "\n"


def check_seconds(n_nodes: int, pods_per_node: int) -> tuple[float, float]:
    """Time ``podnetsim check`` on a generated cluster (file written first).

    Returns
    -------
    tuple of float
        Wall and CPU seconds of this process (CPU time is steadier on a busy machine).
    """
    from click.testing import CliRunner

    from sim.cli.main import cli

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cluster.toml"
        path.write_text(cluster_toml(n_nodes, pods_per_node))
        t, c = time.perf_counter(), time.process_time()
        r = CliRunner().invoke(cli, ["check", str(path)])
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    if r.exit_code != 0:
        raise RuntimeError(f"check failed on {n_nodes} nodes: {r.output[-300:]}")
    return wall, cpu


@click.command()
@click.option("--nodes", default=",".join(map(str, NODE_COUNTS)), show_default=True)
@click.option("--pods", "pods_per_node", default=30, show_default=True)
def main(nodes: str, pods_per_node: int) -> None:
    """Time ``check`` at each node count; print seconds and the growth exponent (CPU)."""
    import math

    counts = [int(n) for n in nodes.split(",")]
    check_seconds(counts[0], pods_per_node)  # imports, warm caches
    prev = None
    for n in counts:
        wall, cpu = check_seconds(n, pods_per_node)
        slope = ""
        if prev is not None:
            slope = f"  growth exponent {math.log(cpu / prev[1]) / math.log(n / prev[0]):.2f}"
        click.echo(
            f"{n:5d} nodes x {pods_per_node} pods: {wall:7.3f} s wall, {cpu:7.3f} s CPU{slope}"
        )
        prev = (n, cpu)


if __name__ == "__main__":
    main()
