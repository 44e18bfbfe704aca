"""The on-disk layout synapse_lens writes: file names and the schema markers that let a later
run recognise its own output (and refuse to touch anything else)."""

from __future__ import annotations

#: ``summary.json`` of a run directory holds ``{"schema": RUN_SCHEMA, ...}``.
RUN_SCHEMA = "synapse_lens.run/1"
#: ``comparison.json`` of a comparison directory holds ``{"schema": COMPARISON_SCHEMA, ...}``.
COMPARISON_SCHEMA = "synapse_lens.comparison/1"
#: ``probes.json`` of saved probes (``ProbeResults.save``) holds ``{"schema": PROBES_SCHEMA}``.
PROBES_SCHEMA = "synapse_lens.probes/1"

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
COMPARISON_FILE = "comparison.json"
PROBES_FILE = "probes.json"
TABLES_DIR = "tables"
