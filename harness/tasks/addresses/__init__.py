"""The postal-address normalisation task (``task``) and its word banks and templates (``bank``)."""
