"""The gateway's configuration, one module a concern.

``model`` declares each section once (frozen msgspec Structs: keys, types, defaults, bounds), with
``fields`` and ``values`` for values the YAML spells otherwise; ``reader`` reads a YAML document into
them with key paths in its errors, every problem at once; ``rules`` holds the rules between values;
``references`` replaces ``${VAR}`` and ``${file:...}``; ``loader`` finds the file and ties them
together. Import names from the module that defines them: this package re-exports nothing.
"""
