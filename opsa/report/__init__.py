"""The report stage: summary tables and the safety-against-reasoning plot."""
