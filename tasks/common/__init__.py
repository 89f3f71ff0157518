"""What every task shares: the task contract, errors, data sources, tokenisers, step parsing, decoding."""
