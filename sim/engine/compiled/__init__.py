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

CPU cores (the CPU-aware data path, ``[datapath] model = "cpu"``): a core serves
segments FIFO, each with its own work and entry queue (backlog, NIC ring, socket
buffer: their own limits and drop reasons; a socket buffer charged skb truesize),
a sending thread holds its pod's sends back while its previous send is on the
core, a receiving thread waits out the scheduler slice of a sending thread that
holds its core, and a packet revisits cores. :mod:`.cpu` flattens the routes
:mod:`sim.engine.cpu_routes` compiled for the SimPy engine, and :mod:`.cpu_loop`
runs :mod:`sim.engine.cpu`'s steps in SimPy's event order (thread releases and
readers' wake-ups are events of their own), so the answers are identical there
too. Anything else :func:`.select.blocking_flow` names (closed-loop flows, random
loss, real-time pods) runs on SimPy.
"""
