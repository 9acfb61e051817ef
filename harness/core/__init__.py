"""The plugin core: the Approach and Candidate contracts, option parsing, compositions,
the registries and the pluggy hooks a plugin implements."""
