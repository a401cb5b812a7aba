"""Twin-Bottleneck Hashing (TBH) building blocks as plain torch modules and functions."""
