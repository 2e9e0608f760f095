"""The compiled exact engine (numba) for scenarios whose flows are all open loop.

Open-loop sources (Poisson, constant, on/off, trace) never react to the network,
so a run is a deterministic function of its arrivals. The engine therefore

1. builds the network and the sources exactly as the SimPy engine does
   (:func:`sim.engine.workloads.install_flows`), without running it;
2. generates every source's arrivals up front with the sources' own random
   streams, in the same calls and block sizes (:mod:`.arrivals`);
3. processes the packet-hop events in a numba loop keyed exactly like SimPy's
   event queue, ``(time, insertion counter)`` (:mod:`.kernel`), or, for one
   source on a route of distinct single-server stations (the headline
   experiment's runs, ``bench``), station after station without an event queue,
   in the order the event loop would take (:mod:`.tandem`).

The answers are therefore *identical* to the SimPy engine's, packet by packet,
not merely close. :mod:`.select` decides which engine runs (a run, or each
configuration of a batch); :mod:`.run` turns the kernel's arrays into a
:class:`~sim.engine.run.RunResult`; :mod:`.preload` loads the kernels into a
batch's forkserver so its workers inherit them.

CPU cores (the CPU-aware data path): a core's backlog is a FIFO station with one
server and a packet limit (``netdev_max_backlog``), and a route may visit the same
station several times (the kernel keys all state by station, not by route
position), so a core is one more station index on a route. What a core needs in
addition is a service time per *hop* (the work done at that visit: veth, bridge,
forwarding), i.e. per-hop ``a``/``b`` in :mod:`.tables` next to ``rt_extra_s``.
Anything that is not a FIFO station (e.g. round-robin softirq budgets between
queues of one core) is refused by :func:`.tables.build_tables`, and
:func:`.select.blocking_flow` names it (today: any ``datapath.model`` but
``stations``) so ``auto`` falls back to SimPy.
"""
