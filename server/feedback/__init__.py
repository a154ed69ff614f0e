"""Clinician feedback on chat completions: validated, stored per tenant, exported for training.

`request` is the wire model of `POST /v1/clinical/feedback`, `store` records and reads the
rows (each linked to the audit row of the completion it rates), and `export` turns them into
the training package's input formats (SFT, preference pairs, rubric scores). Deliberately
empty of imports so the CLI and the route pull in only what they use.
"""
