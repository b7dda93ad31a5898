# Built for the baseline instruction set like every module that must load anywhere.
"""Which instruction-set levels this CPU (and its operating system) supports.

The Cython kernels are compiled several times (see setup.py); ``fastopt._backends`` asks this
module which of those builds can run here. gcc's ``__builtin_cpu_supports`` checks both the CPU's
feature bits and that the OS saves the wider registers (XSAVE), so AVX-512 code is only chosen
where it can really run.
"""

cdef extern from *:
    """
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    static int fastopt_supports_x86_64_v3(void) { __builtin_cpu_init(); return __builtin_cpu_supports("x86-64-v3") != 0; }
    static int fastopt_supports_x86_64_v4(void) { __builtin_cpu_init(); return __builtin_cpu_supports("x86-64-v4") != 0; }
    #else
    static int fastopt_supports_x86_64_v3(void) { return 0; }
    static int fastopt_supports_x86_64_v4(void) { return 0; }
    #endif
    """
    int fastopt_supports_x86_64_v3() nogil
    int fastopt_supports_x86_64_v4() nogil


def supports(str level) -> bool:
    """True if this CPU runs code built for ``level``: "baseline", "x86-64-v3" or "x86-64-v4"."""
    if level == "baseline":
        return True
    if level == "x86-64-v3":
        return bool(fastopt_supports_x86_64_v3())
    if level == "x86-64-v4":
        return bool(fastopt_supports_x86_64_v4())
    raise ValueError(f"unknown instruction-set level {level!r}")
