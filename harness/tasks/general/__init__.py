"""The ``general`` forgetting-probe task (``task``) and its item bank (``bank``)."""
