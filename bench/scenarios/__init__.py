"""One module per benchmarked path, each defining `SCENARIO` (a bench.harness.Scenario)."""
