"""Thin HTTP routes: parse, call the pipeline, render. No business logic here."""
