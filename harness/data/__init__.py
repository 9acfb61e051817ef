"""Users' own data: record layouts and their validation (``records``), encodings and the user's
column and label names (``mapping``), files and folders turned into task splits (``load``),
how the task is scored and why (``scoring``), Hugging Face datasets (``hub``), and the error
and warning classes they share (``errors``)."""
