"""Search: encode a query, find snippets, join the catalog. Also wires an archive together."""
