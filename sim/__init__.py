"""Podnetsim: what the Kubernetes pod network costs a packet, and where.

Data flows one way through the sub-packages::

    spec/      scenario file -> validated, frozen spec objects
    control/   spec -> cluster (addresses, routes, NAT) -> resolved paths
    engine/    paths + workloads -> SimPy run -> per-packet records
    analysis/  records -> summaries (warm-up removed)
    batch/     experiment file -> run specs -> executor -> results files
    plots/     results files -> figures
    cli/       thin command-line verbs over the above
"""

__version__ = "0.1.0"
