"""fastopt's asv benchmark suite: see docs/dashboard.md and benchmarks/common.py."""
