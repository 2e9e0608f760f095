"""The compiled exact engine (numba) for scenarios whose flows are all open loop.

Open-loop sources (Poisson, constant, on/off, trace) never react to the network,
so a run is a deterministic function of its arrivals. The engine therefore

1. builds the network and the sources exactly as the SimPy engine does
   (:func:`sim.engine.workloads.install_flows`), without running it;
2. generates every source's arrivals up front with the sources' own random
   streams, in the same calls and block sizes (:mod:`.arrivals`);
3. processes the packet-hop events in a numba loop keyed exactly like SimPy's
   event queue, ``(time, insertion counter)`` (:mod:`.kernel`).

The answers are therefore *identical* to the SimPy engine's, packet by packet,
not merely close. :mod:`.select` decides which engine runs; :mod:`.run` turns the
kernel's arrays into a :class:`~sim.engine.run.RunResult`.
"""
