"""RELIABILITY.md's template: the file's introduction and the "Soak" section, whose figures
the driver replaces between BEGIN and END after each run (SOAK_REPORT=0 leaves them)."""

BEGIN = "<!-- soak: the last run's summary, written by scripts/soak/soak.py -->"
END = "<!-- soak: end of summary -->"

INTRO = """# Reliability

How Herald's promises (README, "What it promises") are put under load and faults beyond
the unit and integration suites: what was run, how to run it again, and what it found.
"""

SECTION = f"""## Soak

`make soak` runs the soak and its checker; `.ci/run` runs a short one after `make test`.

### Last run

{BEGIN}
(no run yet)
{END}
"""
