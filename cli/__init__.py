"""The `clinserve` command: a thin front door that imports each subcommand lazily."""
