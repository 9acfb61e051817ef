"""Training: supervised fine-tuning, the cached ``TrainedApproach`` base, preference
trainers (DPO, reward model, RLOO), Houlsby adapters and training-curve callbacks."""
