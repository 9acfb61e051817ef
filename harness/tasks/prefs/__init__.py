"""The customer-support preference task (``task``), its rule-based judge (``judge``) and
phrase bank (``phrases``)."""
