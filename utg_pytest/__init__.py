"""utg-pytest: regression-test a chat model by predicting the user turns of its own logs.

Pipeline, one module each: ingest (load) -> probes -> generate (with cache) -> scoring -> gates -> report; runner
drives the generation phase and suite holds one run. plugin and items are the only pytest-facing modules.
"""

__version__ = "0.1.0"
