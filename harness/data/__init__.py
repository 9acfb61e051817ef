"""Users' own data: record layouts and their validation (``records``), files and folders
turned into task splits (``load``), Hugging Face datasets (``hub``)."""
