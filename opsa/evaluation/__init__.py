"""The evaluate stage: answer checking, bootstrap intervals and per-set metrics."""
