"""Run the studies: specifications as data, the command line, results and reports."""
