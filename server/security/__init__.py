"""Who is calling and what they may do: API-key authentication, per-route scopes, end users.

Every route is classified in `scopes.ROUTE_SCOPES` (or listed as public); an unclassified
route is refused, so a new endpoint cannot ship unprotected by omission.
"""
