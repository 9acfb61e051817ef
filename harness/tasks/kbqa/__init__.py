"""The synthetic knowledge-base QA task (``task``) and its generated world (``world``)."""
