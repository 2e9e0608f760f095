"""The scenario ``podnetsim bench`` runs (and the compiled engine warms up on).

Built in code, not read from ``experiments/``: an installed package has no
experiments folder.
"""

BENCH_FLOW = {"name": "bench", "kind": "poisson", "src": "api", "dst": "web", "load": 0.5}
#: The cluster of experiments/scenarios/article.toml that the benchmark flow crosses
#: (built in code: an installed package has no experiments/ folder), default costs.
BENCH_SCENARIO = {
    "name": "bench",
    "node_network": {"cidr": "10.100.0.0/24", "gateway": "10.100.0.1"},
    "pod_network": {"cluster_cidr": "10.0.0.0/14", "node_prefix_length": 24},
    "nodes": [
        {"name": "node1", "address": "10.100.0.2"},
        {"name": "node2", "address": "10.100.0.3"},
    ],
    "pods": [{"name": "web", "node": "node1"}, {"name": "api", "node": "node2"}],
    "flows": [BENCH_FLOW],
}
#: The TCP cases of ``podnetsim bench``: one CUBIC connection over the same path
#: (api on node2 to web on node1), without and with segmentation offload. A tcp
#: flow sends as fast as its path takes, so these run a tenth of the duration.
BENCH_TCP_FLOWS = {
    "tcp": {"name": "bench-tcp", "kind": "tcp", "src": "api", "dst": "web"},
    "tcp_tso": {"name": "bench-tcp", "kind": "tcp", "src": "api", "dst": "web", "tso": True},
}
#: Simulated time of the TCP cases, as a fraction of ``--duration``.
BENCH_TCP_DURATION_FRACTION = 0.1

#: ``podnetsim bench``'s CPU case: the same path on the CPU data path, 64 B packets at
#: 150 kpacket/s (about 60 % of the sender core's 258 kpacket/s at default costs).
BENCH_CPU_SCENARIO = {
    **BENCH_SCENARIO,
    "datapath": {"model": "cpu"},
    "flows": [
        {
            "name": "bench",
            "kind": "poisson",
            "src": "api",
            "dst": "web",
            "rate_pps": 150000,
            "size_bytes": 64,
        }
    ],
}
