"""Check the model against the real-kernel replica's measurements (no root needed).

    models.py     typed measurements, TCP sets and comparisons (one schema version)
    cases.py      the RTT cases and endpoint pairs, and the model's verdict for each
    calibrate.py  fit per-hop costs to measured round trips -> params TOML
    compare.py    simulate the measured cases; model vs observed SNAT verdicts
    measure.py    run the cases on a replica (root, with :mod:`sim.testbed`)
    loaded.py     the CPU data path fitted to idle RTTs and one saturation; loaded predictions
    tcp.py        the TCP costs fitted to one iperf3 goodput; the other placements predicted

Only running :mod:`~sim.validate.measure` needs root; importing any of it does not.
"""
