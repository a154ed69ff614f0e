"""The audit trail (HIPAA 45 CFR 164.312(b) audit controls, (c) integrity): one row per
request, hash-chained so tampering shows, with no patient text unless a tenant opts in.

`chain` defines a row's canonical form and hash, `store` appends, queries, verifies, exports
and purges, `writer` moves rows off the request path in batches.
"""
