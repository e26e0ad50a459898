"""The gateway's configuration, one module a concern.

``model`` holds the frozen settings the rest of the code sees; ``reader`` reads one YAML mapping
with key paths in its errors; ``sections`` reads each section of the contract
(``docs/configuration.md``); ``references`` replaces ``${VAR}`` and ``${file:...}``; ``loader``
finds the file and ties them together.
Import names from the module that defines them: this package re-exports nothing.
"""
