"""The report of a run, built from its folder: one self-contained HTML page (summary, claims
ledger, every published table in the paper's layout, ArviZ figures, diagnostics, prior
sensitivity, provenance), ``claims.csv``, LaTeX/Markdown tables, and the comparison of two
runs."""

from inference.report.build import build_report, convergence_verdict, write_report
from inference.report.bundle import RunBundle, RunFolderError, load_run

__all__ = ["RunBundle", "RunFolderError", "build_report", "convergence_verdict", "load_run",
           "write_report"]
