"""utg-pytest: regression-test a chat model by predicting the user turns of its own logs.

Pipeline, one module each: ingest (load) -> probes -> runner and generate (with cache) -> scoring -> record ->
figures and gates -> report; pipeline runs the stages and returns the run record. plugin, items and distributed are
the only pytest-facing modules; cli is the `utg` command.
"""

__version__ = "0.1.0"
