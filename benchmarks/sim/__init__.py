"""The scale simulator: the real launch, status and reconcile code driven with in-process
adapters (an in-memory store that counts its calls, a launcher with a GPU pool) and a
simulated clock. ``world.run(Scenario(...))`` returns a ``Report``; ``make bench-scale`` prints
three scenarios side by side (``benchmarks/bench_scale.py``)."""
