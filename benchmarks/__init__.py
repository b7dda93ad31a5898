"""fastopt's asv benchmark suite: see README, "Performance dashboard", and benchmarks/common.py."""
