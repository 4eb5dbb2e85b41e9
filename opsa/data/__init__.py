"""The prepare_data stage: prompt sets for training and evaluation."""
