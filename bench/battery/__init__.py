"""Battery benchmark for dotcore's connection policy.

Modules (import with ``bench/`` on ``sys.path``, e.g. ``PYTHONPATH=bench``):

* :mod:`battery.trace`      -- query-trace text format (reader/writer)
* :mod:`battery.gen_traces` -- seeded generator of the committed traces
* :mod:`battery.wire`       -- RTT and byte model shared by all simulators
* :mod:`battery.timeline`   -- the JSON-lines event timeline format + parser
* :mod:`battery.policies`   -- simulators of other clients' policies and of
  dotcore's intended policy ("dotcore-model")
* :mod:`battery.radio`      -- LTE RRC and Wi-Fi PSM energy models
* :mod:`battery.report`     -- tables, sweep and plots

See docs/BATTERY.md.
"""
