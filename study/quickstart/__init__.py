"""The embedded default: the paper's four studies in miniature on Fashion-MNIST and MNIST digits, on one CPU machine."""
