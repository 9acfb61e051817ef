"""The synthetic review-sentiment task (``task``) and its phrase bank (``phrases``)."""
