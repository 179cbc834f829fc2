"""Demo data (data files in demo/data/) and the `load_demo` command that loads it.

The top floor: the only app that imports every other (content, approvals, journeys,
delivery), so none of them needs to know the demo exists.
"""
