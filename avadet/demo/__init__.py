"""``avadet demo``: the whole system on a synthetic AVA-format dataset, on the CPU.

- :mod:`avadet.demo.run`: the use case :func:`~avadet.demo.run.run_demo` and the command;
- :mod:`avadet.demo.analysis`: reading the results (class groups, group mean APs, the
  side-by-side table), also used by ``tools/benchmarks/synthetic.py``.

Nothing is imported here, so that ``avadet.demo.run`` names the module, not its ``run``.
"""
